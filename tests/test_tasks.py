"""The component registry and the tasks: option schemas, a new encoder as one class plus one
registry entry, and every task trained, predicted and scored on the toy."""

import copy

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, prepared_toy
from torch import nn

from hepsnake.config import load_model
from hepsnake.errors import HepsnakeError
from hepsnake.models import registry
from hepsnake.models.encoders import masked
from hepsnake.training.run import train


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A small prepared toy (train/val/test splits, norm and class dicts)."""
    root = tmp_path_factory.mktemp("tasks")
    config, outputs = prepared_toy(
        root, {"qcd": 2000, "bib": 1000, "sig": 1000}, 5, model_dir=str(REPO / "config" / "models")
    )
    return config, root, outputs


def model_file(tmp_path, model):
    """``config`` pointing at a model dir holding ``model`` as ``m.yaml``."""
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(model))
    return {"model_dir": str(tmp_path), "training_overrides": {}}


BASE = {
    "dim": 8,
    "encoder": {"type": "deepsets", "layers": 1},
    "pooling": {"type": "sum"},
    "head": {"hidden": [8]},
}


@pytest.mark.parametrize(
    ("change", "where", "cause"),
    [
        ({"pooling": {"type": "sum", "heads": 2}}, "model/pooling", "heads"),
        ({"encoder": {"type": "deepsets", "layer": 2}}, "model/encoder", "layer"),
        ({"encoder": {"type": "deepset"}}, "model/encoder/type", "unknown encoder 'deepset'"),
        ({"tasks": [{"type": "jet_classification", "wieght": 1}]}, "model/tasks/0", "wieght"),
        ({"tasks": [{"type": "jet_regression", "name": "m"}]}, "model/tasks/0/target", "missing"),
        ({"tasks": [{"type": "jet_regression", "name": "m", "target": "mS"}]}, "tasks", "exactly"),
        (
            {"tasks": [{"type": "jet_classification"}, {"type": "jet_classification"}]},
            "model/tasks",
            "exactly one jet_classification",
        ),
        (
            {
                "tasks": [
                    {"type": "jet_classification", "name": "a"},
                    {"type": "jet_regression", "name": "a", "target": "mS"},
                ]
            },
            "model/tasks",
            "'a' used twice",
        ),
    ],
)
def test_component_options_are_checked_by_their_own_schema(tmp_path, change, where, cause):
    config = model_file(tmp_path, {"model": BASE | change})
    with pytest.raises(HepsnakeError) as error:
        load_model(config, "m")
    message = str(error.value)
    assert str(tmp_path / "m.yaml") in message and where in message and cause in message
    assert "\n" not in message


def test_defaults_of_a_component_are_filled_in(tmp_path):
    model = load_model(model_file(tmp_path, {"model": BASE}), "m")["model"]
    assert model["encoder"] == {"type": "deepsets", "layers": 1, "dropout": 0.0}
    assert model["tasks"] == [
        {"type": "jet_classification", "name": "jet_classification", "weight": 1.0}
    ]


class MaxEncoder(nn.Module):
    """A test encoder: one dense layer per constituent plus the jet's maximum, scaled."""

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.layer, self.scale, self.n_layers = nn.Linear(2 * dim, dim), scale, 1

    def forward(self, x, mask, modulate=None):
        top = masked(x, mask).amax(1, keepdim=True).expand_as(x)
        return masked(self.scale * torch.relu(self.layer(torch.cat([x, top], -1))), mask)


def test_a_new_encoder_is_one_class_and_one_registry_entry(toy, tmp_path, monkeypatch):
    config, root, outputs = toy
    entry = registry.Component(MaxEncoder, {"scale": {"type": "number", "default": 0.5}})
    monkeypatch.setitem(registry.REGISTRY["encoder"], "max", entry)  # the one registry line
    shipped = yaml.safe_load((REPO / "config" / "models" / "baseline.yaml").read_text())
    shipped["model"]["encoder"] = {"type": "max"}
    shipped["training"] |= {"max_epochs": 1, "batch_size": 500, "early_stopping": None}
    model = load_model(config | model_file(tmp_path, shipped), "m")
    assert model["model"]["encoder"] == {"type": "max", "scale": 0.5}
    part = {"class_names": config["class_names"], "inputs": config["inputs"], "model": model}
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    summary = train(part, *paths, str(tmp_path / "out"))
    assert np.isfinite(summary["epochs"][0]["val_loss"])
    bad = copy.deepcopy(shipped)
    bad["model"]["encoder"] = {"type": "max", "scale": "big"}
    with pytest.raises(HepsnakeError, match="model/encoder/scale"):
        load_model(config | model_file(tmp_path, bad), "m")
