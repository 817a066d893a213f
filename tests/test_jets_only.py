"""Any input shape trains: jets-only samples and models (train, predict, export, evaluate),
jets without constituents scored by their own variables, small samples' batch size."""

import copy
import json
import logging

import h5py
import numpy as np
import pytest
import torch
from conftest import REPO, default_config, inputs_of, model_spec, prepared_toy, train_contract
from conftest import stage as stage_of

from hepsnake.config import load_model, validate
from hepsnake.data.loader import InputSpec
from hepsnake.evaluate.predict import load_module, predict
from hepsnake.evaluate.stage import evaluate
from hepsnake.export import stage
from hepsnake.export.onnx import input_names
from hepsnake.models.tagger import Tagger
from hepsnake.models.tasks.base import Context
from hepsnake.training.run import train

ENCODERS = [
    {"type": "deepsets", "layers": 1},
    {"type": "transformer", "layers": 1, "heads": 2},
    {"type": "lstm", "layers": 1},
    {"type": "gatv2", "layers": 1, "heads": 2},
]


@pytest.fixture(scope="module")
def jets_only(tmp_path_factory):
    """Toy samples converted with no constituent collection at all, split and normalised."""
    root = tmp_path_factory.mktemp("jets_only")
    shipped = default_config()
    readers = copy.deepcopy(shipped["readers"])
    readers["toy"]["collections"] = {}
    variables = shipped["inputs"]["variables"]["jets"]
    config, outputs = prepared_toy(
        root,
        {"qcd": 600, "bib": 300, "sig": 300},
        3,
        readers=readers,
        convert=shipped["convert"] | {"max_constituents": {}, "sort_by": {}},
        inputs={"variables": {"jets": variables}, "transforms": {"jets": {"pt": "log1p"}}},
        prepare=shipped["prepare"] | {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}},
        model_dir=str(REPO / "config" / "models"),
    )
    for path in outputs.values():
        with h5py.File(path, "r") as h5:
            assert list(h5) == ["jets"]
    return config, root, outputs


def model_config(config, name, **model):
    out = copy.deepcopy(load_model(config, name))
    out["model"].update(model)
    out["training"].update(max_epochs=2, early_stopping=None)
    return out


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("dense", {}),
        ("baseline", {"jet_inputs": "constituents"}),
        ("baseline", {"jet_inputs": "pooled"}),
    ],
)
def test_jets_only_trains_predicts_exports_and_evaluates(jets_only, tmp_path, caplog, name, model):
    config, root, outputs = jets_only
    part = train_contract(config, model_config(config, name, **model))
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    with caplog.at_level(logging.WARNING, logger="hepsnake"):
        summary = train(part, *paths, str(tmp_path / "m"))
    assert [e["epoch"] for e in summary["epochs"]] == [0, 1]
    # 1000-jet batches over the ~700 training jets: reduced to 10 steps per epoch, with word
    with h5py.File(outputs["train"], "r") as h5:
        n_train = len(h5["jets"])
    reduced = -(-n_train // 10)
    assert f"only {n_train} training jets: batch_size 1000" in caplog.text
    assert f"using batch_size {reduced}" in caplog.text
    ckpt = str(tmp_path / "m" / "best.ckpt")
    module = load_module(ckpt)
    assert module.spec.constituents == [] and input_names(module.model) == ["jets_data"]

    counts = predict("m", ckpt, outputs["test"], str(tmp_path / "pred.h5"))
    with h5py.File(tmp_path / "pred.h5", "r") as h5:
        jets = h5["jets"][:]
    assert counts["jets"] == len(jets) > 0
    probs = np.stack([jets[f"m_p{c}"] for c in config["class_names"]], axis=-1)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert len(np.unique(probs[:, 1])) > len(jets) // 2  # scores follow the jet variables

    result = stage.export(
        ckpt, "m", outputs["test"], outputs["val"], str(tmp_path / "onnx"), n_latency=10
    )
    assert result["validation"]["fp32"]["max_abs_diff_vs_pytorch"] <= stage.TOLERANCE
    assert result["validation"]["int8"]["passed"]
    assert (tmp_path / "onnx" / "model.int8.onnx").is_file()

    (tmp_path / "train.json").write_text(json.dumps(summary))
    metrics = evaluate(
        stage_of(config, "evaluate", models={"m": model_config(config, name, **model)}, model="m"),
        str(tmp_path / "pred.h5"),
        str(tmp_path / "train.json"),
        str(tmp_path / "metrics.json"),
        str(tmp_path / "plots"),
    )
    assert 0.5 < metrics["inclusive"]["auc"] <= 1.0


def test_dense_model_ignores_constituent_collections(monkeypatch):
    """dense.yaml on inputs with tracks and clusters reads only the jet variables."""
    model = load_model(
        {"model_dir": str(REPO / "config" / "models"), "training_overrides": {}}, "dense"
    )
    monkeypatch.chdir(REPO)  # the shipped config's sample sheet
    inputs = default_config()["inputs"]
    spec = InputSpec.from_config(inputs_of(validate(default_config())))
    norm = {c: {v: {"mean": 0.0, "std": 1.0} for v in vs} for c, vs in spec.variables.items()}
    tagger = Tagger(model_spec(model["model"]), spec, norm, Context(["a", "b", "c"]))
    assert tagger.collections == [] and input_names(tagger) == ["jets_data"]
    out = tagger({"jets": torch.randn(5, len(inputs["variables"]["jets"]))})
    assert out["logits"].shape == (5, 3)


@pytest.mark.parametrize("jet_inputs", ["constituents", "pooled"])
@pytest.mark.parametrize("encoder", ENCODERS, ids=[e["type"] for e in ENCODERS])
@pytest.mark.parametrize("pooling", ["sum", "attention", "cross_attention"])
def test_jets_without_constituents_are_scored_by_their_variables(encoder, jet_inputs, pooling):
    spec = InputSpec({"jets": ["a", "b"], "tracks": ["x", "y", "z"], "clusters": ["e"]})
    norm = {c: {v: {"mean": 0.0, "std": 1.0} for v in vs} for c, vs in spec.variables.items()}
    cfg = {
        "dim": 8,
        "jet_inputs": jet_inputs,
        "encoder": encoder,
        "pooling": {"type": pooling} | ({"heads": 2} if pooling == "cross_attention" else {}),
        "head": {"hidden": [8]},
    }
    torch.manual_seed(0)
    tagger = Tagger(model_spec(cfg), spec, norm, Context(["a", "b", "c"])).eval()
    n = 6
    batch = {
        "jets": torch.randn(n, 2),
        "tracks": torch.randn(n, 4, 3),  # garbage in the padded slots: never read
        "tracks_mask": torch.zeros(n, 4, dtype=torch.bool),
        "clusters": torch.randn(n, 3, 1),
        "clusters_mask": torch.zeros(n, 3, dtype=torch.bool),
    }
    with torch.no_grad():
        probs = tagger(batch)["logits"].softmax(-1)
    assert torch.isfinite(probs).all()
    spread = (probs - probs[0]).abs().amax(-1)[1:]
    assert (spread > 1e-4).all(), spread
