"""The component registry and the tasks: option schemas, a new encoder or task as one class
plus one registry entry, and every task trained, predicted and scored on the toy."""

import copy
import json

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, prepared_toy, stage, train_contract
from torch import nn

from hepsnake.config import build, load_model
from hepsnake.config.contracts import Component
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import predict
from hepsnake.evaluate.stage import evaluate, score_tasks
from hepsnake.export import stage as export_stage
from hepsnake.export.onnx import session
from hepsnake.models import registry
from hepsnake.models.encoders import masked
from hepsnake.models.tasks.base import Task, plot_name
from hepsnake.names import task_field
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
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    summary = train(train_contract(config, model), *paths, str(tmp_path / "out"))
    assert np.isfinite(summary["epochs"][0]["val_loss"])
    bad = copy.deepcopy(shipped)
    bad["model"]["encoder"] = {"type": "max", "scale": "big"}
    with pytest.raises(HepsnakeError, match="model/encoder/scale"):
        load_model(config | model_file(tmp_path, bad), "m")


class FiniteField(Task):
    """A test task: is a jet field finite (the toy's ``mS``: a signal jet)? One probability
    per jet, scored by its AUC, plotted as a ROC."""

    level = "jet"

    def __init__(self, context, name, field, weight=1.0):
        super().__init__(context, name, weight)
        self.field = field

    def head(self, trunk):
        from hepsnake.models.tasks.heads import JetHead

        return JetHead(trunk.jet_width, [trunk.dim], 1, 0.0, squeeze=True)

    def labels(self):
        return [("jets", self.field)]

    def loss(self, output, batch):
        from hepsnake.models.tasks.heads import weighted_mean

        target = torch.isfinite(batch[self.field].float()).float()
        bce = nn.functional.binary_cross_entropy_with_logits(
            output.float(), target, reduction="none"
        )
        return {"loss": weighted_mean(bce, batch["weight"])}

    def predict_names(self, model):
        return [task_field(model, self.name, "p")]

    def predict(self, output, model):
        return {self.predict_names(model)[0]: output.float().sigmoid()}

    def evaluate(self, table, model, jets=None):
        from sklearn.metrics import roc_auc_score

        truth = np.isfinite(table[self.field].astype(np.float64))
        score = table[self.predict_names(model)[0]]
        return {"n": len(truth), "auc": float(roc_auc_score(truth, score))}

    def plot(self, table, model, directory, unit, jets=None):
        from hepsnake.evaluate import plots
        from hepsnake.evaluate.metrics import INCLUSIVE, rejection_curve

        truth = np.isfinite(table[self.field].astype(np.float64))
        score = table[self.predict_names(model)[0]]
        name = plot_name(self.name, "roc")
        curves = {model: {INCLUSIVE: rejection_curve(score[truth], score[~truth])}}
        plots.plot_roc(curves, directory / name, f"{self.name}: finite {self.field}", self.field)
        return [name]


def test_a_new_task_is_one_class_and_one_registry_entry(toy, tmp_path, monkeypatch):
    """A task the evaluate and export code never heard of is trained, predicted, scored,
    plotted into the model's ``tasks`` plots and exported (ONNX output, validated per output,
    its figures on the int8 outputs) by the same code as the shipped tasks."""
    config, root, outputs = toy
    options = {"name": registry.NAME, "field": {"type": "string"}, "weight": registry.WEIGHT}
    entry = registry.Component(FiniteField, options, required=("name", "field"))
    monkeypatch.setitem(registry.REGISTRY["task"], "finite_field", entry)  # the one registry line
    shipped = yaml.safe_load((REPO / "config" / "models" / "baseline.yaml").read_text())
    shipped["model"]["tasks"] = [
        {"type": "jet_classification"},
        {"type": "finite_field", "name": "has_mass", "field": "mS"},
    ]
    shipped["training"] |= {"max_epochs": 2, "batch_size": 500, "early_stopping": None}
    model = load_model(config | model_file(tmp_path, shipped), "m")
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    epoch = train(train_contract(config, model), *paths, str(tmp_path / "out"))["epochs"][-1]
    assert np.isfinite(epoch["val_has_mass_loss"]) and "val_ce" in epoch
    ckpt, predictions = str(tmp_path / "out" / "best.ckpt"), tmp_path / "pred.h5"
    predict("m", ckpt, outputs["test"], str(predictions))
    with h5py.File(predictions) as h5:
        p = h5["jets"]["m_has_mass_p"]
    assert ((p >= 0) & (p <= 1)).all()

    plot_dir = tmp_path / "plots"
    plot_dir.mkdir()
    metrics = evaluate(
        stage(config, "evaluate", models={"m": model}, model="m"),
        str(predictions),
        str(tmp_path / "out" / "metrics.json"),
        str(tmp_path / "metrics.json"),
        str(plot_dir),
    )
    figures = metrics["tasks"]["has_mass"]
    assert 0.6 < figures["auc"] <= 1  # mS is finite for the signal jets only: learnt
    assert figures["plots"] == ["tasks/has_mass_roc.png"]
    assert (plot_dir / "tasks" / "has_mass_roc.png").stat().st_size > 0
    assert (plot_dir / "roc.png").is_file() and "inclusive" in metrics  # the jet classification

    outdir = tmp_path / "onnx"
    export_stage.export(ckpt, "m", outputs["test"], outputs["val"], str(outdir), n_latency=5)
    names = [o.name for o in session(outdir / "model.onnx").get_outputs()]
    assert names == [f"m_p{c}" for c in config["class_names"]] + ["m_has_mass_p"]
    validation = json.loads((outdir / "validation.json").read_text())
    assert "m_has_mass_p" in validation["fp32"]["max_abs_diff_vs_pytorch_per_output"]
    int8 = validation["int8"]["tasks"]["has_mass"]
    assert abs(int8["int8"]["auc"] - int8["fp32"]["auc"]) < 0.02 and int8["fp32"]["auc"] > 0.6


def test_no_stage_special_cases_the_jet_classification():
    """The headline task's output key is named in its own module only, and no code skips the
    first task: every stage goes through the task interface."""
    src = REPO / "src" / "hepsnake"
    owner = src / "models" / "tasks" / "jet_classification.py"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "tasks[1:]" not in text, path
        assert path == owner or '"logits"' not in text, path


TASKS = [
    {"type": "jet_classification"},
    {"type": "jet_regression", "name": "mass", "target": "mS", "weight": 0.1},
    {
        "type": "constituent_classification",
        "name": "track_origin",
        "collection": "tracks",
        "label": "truth_origin",
        "classes": ["pileup", "prompt", "llp"],
        "bayes": {"sig": "truth_p_llp_sig"},
        "mixture": 2,
        "weight": 0.5,
    },
    {
        "type": "edge_classification",
        "name": "vertexing",
        "collection": "tracks",
        "label": "truth_vertex",
        "weight": 0.2,
    },
]


def test_every_task_trains_predicts_and_is_scored(toy, tmp_path):
    """Four tasks on the toy's truth: per-task losses logged, jet columns and (N, max)
    constituent datasets predicted, a ``tasks`` mapping with each task's headline figures."""
    config, root, outputs = toy
    shipped = yaml.safe_load((REPO / "config" / "models" / "baseline.yaml").read_text())
    shipped["model"] |= {"dim": 16, "init_nets": {"default": {"hidden": [16]}}, "tasks": TASKS}
    shipped["training"] |= {"max_epochs": 2, "batch_size": 400, "early_stopping": None}
    model = load_model(config | model_file(tmp_path, shipped), "m")
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    epoch = train(train_contract(config, model), *paths, str(tmp_path / "out"))["epochs"][-1]
    weighted = epoch["val_ce"] + sum(
        t["weight"] * epoch[f"val_{t['name']}_loss"] for t in TASKS[1:]
    )
    assert epoch["val_loss"] == pytest.approx(weighted, rel=1e-4)
    predictions = tmp_path / "pred.h5"
    predict("m", str(tmp_path / "out" / "best.ckpt"), outputs["test"], str(predictions))
    with h5py.File(predictions) as h5, h5py.File(outputs["test"]) as test:
        jets, tracks = h5["jets"][:], h5["tracks"][:]
        assert tracks.shape == test["tracks"].shape  # (N, max): Salt's per-track layout
        assert np.array_equal(tracks["valid"], test["tracks"]["valid"][:])
    regressed = jets["m_mass"][np.isfinite(jets["mS"])]
    assert np.isfinite(regressed).all() and abs(regressed.mean() - 16.0) < 8.0
    probs = np.stack([tracks[f"m_track_origin_p{c}"] for c in TASKS[2]["classes"]], -1)
    assert np.allclose(probs[tracks["valid"]].sum(-1), 1.0, atol=1e-5)
    vertex = tracks["m_vertexing_vertex"]
    assert set(np.unique(vertex[tracks["valid"]])) <= {-1.0, *map(float, range(40))}
    metrics = score_tasks(
        stage(config, "evaluate", models={"m": model}, model="m"), str(predictions), tmp_path
    )
    figures = metrics["tasks"]
    assert list(figures) == ["jet_classification", "mass", "track_origin", "vertexing"]
    assert figures["jet_classification"]["auc"] == metrics["inclusive"]["auc"]
    origin = figures["track_origin"]
    assert 0.5 < origin["auc"] <= 1 and origin["auc"] < origin["bayes_auc"] + 0.02
    assert origin["bayes_auc"] > 0.8  # the toy's LLP tracks are well separated given the jet
    assert figures["mass"]["n"] == int(np.isfinite(jets["mS"]).sum())
    assert 0 <= (figures["vertexing"]["efficiency"] or 0) <= 1
    assert (tmp_path / "tasks" / "track_origin_roc.png").is_file()
    assert (tmp_path / "tasks" / "mass_residuals.png").is_file()


def test_task_bayes_score_is_the_generators_posterior(toy):
    """The constituent task's Bayes score (from the truth fields the files carry) equals the
    toy generator's own exact P(llp | jet) on real tracks, and is the class mixture of the
    exact jet posterior; a wrong jet posterior gives another score."""
    from hepsnake.models.tasks.base import Context
    from hepsnake.simulate.densities import ORIGINS, bayes_constituent_score

    config, _, outputs = toy
    names = list(config["class_names"])
    task = registry.build("task", build(Component, TASKS[2]), context=Context(names))
    with h5py.File(outputs["test"]) as h5:
        jets, tracks = h5["jets"][:], h5["tracks"][:]
    fractions = {c: float(np.mean(jets["flavour_label"] == i)) for i, c in enumerate(names)}
    jet_logp = {c: jets[f"truth_logp_{c}"] for c in names}
    exact = bayes_constituent_score(tracks, jet_logp, fractions)[..., ORIGINS.index("llp")]
    real = tracks["valid"]
    score = task.bayes_score(tracks, jets)
    np.testing.assert_allclose(score[real], exact[real], rtol=1e-9, atol=1e-12)
    uniform = np.full((len(jets), len(names)), 1 / len(names))
    assert not np.allclose(task.class_mixture(tracks, uniform)[real], exact[real])
