"""ONNX export of a multi-task model: every task's outputs, named after the task, with a
dynamic constituent axis, validated per output against PyTorch (fp32, int8, Athena layout)."""

import copy
import json

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY, checkpoint, prepared_toy
from numpy.lib import recfunctions

from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import load_module
from hepsnake.export import athena as salt
from hepsnake.export import stage
from hepsnake.export.benchmark import load_batches
from hepsnake.export.onnx import export_onnx, metadata, outputs, real_slots, session

MODEL = "multi"
TASKS = [
    {"type": "jet_classification"},
    {"type": "jet_regression", "name": "mass", "target": "mS"},
    {
        "type": "constituent_classification",
        "name": "origin",
        "collection": "tracks",
        "label": "origin",
        "classes": ["other", "displaced"],
    },
    {"type": "edge_classification", "name": "vtx", "collection": "tracks", "label": "vertex"},
]
# the ONNX outputs after the jet classes' and their axes (every constituent axis the tracks')
TASK_OUTPUTS = {
    "multi_mass": ["batch"],
    "multi_origin_pother": ["batch", "n_tracks"],
    "multi_origin_pdisplaced": ["batch", "n_tracks"],
    "multi_vtx_pedge": ["batch", "n_tracks", "n_tracks"],
}


def with_track_truth(path: str) -> None:
    """Add synthetic per-track ``origin`` (|d0| > 0.5) and ``vertex`` fields to a split."""
    with h5py.File(path, "r+") as h5:
        tracks = h5["tracks"][:]
        origin = (np.abs(tracks["d0"]) > 0.5).astype(np.int8)
        vertex = np.where(origin == 1, 1, -1).astype(np.int16)
        flat = recfunctions.append_fields(
            tracks.reshape(-1),
            ["origin", "vertex"],
            [origin.ravel(), vertex.ravel()],
            usemask=False,
        )
        del h5["tracks"]
        h5["tracks"] = flat.reshape(tracks.shape)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Prepared toy splits with synthetic track truth, the norm dict and the config."""
    root = tmp_path_factory.mktemp("task_export")
    fractions = {"fractions": {"train": 0.4, "val": 0.3, "test": 0.3}}
    config, paths = prepared_toy(root, {"qcd": 300, "bib": 150, "sig": 150}, 5, prepare=fractions)
    for path in paths.values():
        with_track_truth(path)
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    return config, root, paths, norm


@pytest.fixture(scope="module")
def exported(data):
    """The multi-task checkpoint through the export stage, Athena layout included."""
    _, root, paths, _ = data
    ckpt = checkpoint(data, MODEL, {**TINY, "tasks": TASKS})
    outdir = root / "onnx" / MODEL
    stage.export(ckpt, MODEL, paths["test"], paths["val"], str(outdir), n_latency=5, athena=True)
    return ckpt, outdir


def expected_outputs(config: dict) -> dict[str, list[str]]:
    """Every ONNX output (the jet classes first, in class order) and its axes."""
    return {f"multi_p{c}": ["batch"] for c in config["class_names"]} | TASK_OUTPUTS


def test_outputs_are_named_after_the_tasks_with_constituent_axes(exported, data):
    ckpt, outdir = exported
    expected = expected_outputs(data[0])
    for name in ("model.onnx", "model.int8.onnx"):
        sess = session(outdir / name)
        assert {o.name: o.shape for o in sess.get_outputs()} == expected
        assert [o.name for o in sess.get_outputs()] == list(expected)  # jet classes first
    assert json.loads(metadata(outdir / "model.onnx")["output_names"]) == list(expected)
    tasks = load_module(ckpt).model.tasks
    assert [n for t in tasks for n in t.export_names(MODEL)] == list(expected)
    gnn = salt.read_gnn_config(outdir / salt.FILE)
    assert gnn["output_names"] == list(expected)  # the model name has no _ or - to drop
    shapes = {o.name: o.shape for o in session(outdir / salt.FILE).get_outputs()}
    assert shapes == {n: axes[1:] for n, axes in expected.items()}  # one jet: no batch


def test_validation_records_every_output(exported, data):
    _, outdir = exported
    expected = expected_outputs(data[0])
    validation = json.loads((outdir / "validation.json").read_text())
    fp32, int8, athena = validation["fp32"], validation["int8"], validation["athena"]
    assert set(fp32["max_abs_diff_vs_pytorch_per_output"]) == set(expected)
    assert max(fp32["max_abs_diff_vs_pytorch_per_output"].values()) <= stage.TOLERANCE
    assert set(fp32["padding_max_abs_diff_per_output"]) == set(expected)
    assert fp32["padding_max_abs_diff"] <= stage.PADDING_TOLERANCE
    assert set(athena["max_abs_diff_vs_batched_per_output"]) == set(expected)
    assert athena["max_abs_diff_vs_batched"] <= salt.TOLERANCE
    diffs = int8["max_abs_diff_vs_fp32_per_output"]
    assert set(diffs) == set(expected) and all(0 <= d < 1 for d in diffs.values())
    assert int8["padding_max_abs_diff"] <= stage.PADDING_TOLERANCE
    # constituent AUC over real tracks and regression figures, fp32 and int8 alike
    assert set(int8["tasks"]) == {"mass", "origin"}
    for figures in int8["tasks"]["origin"].values():
        assert 0 < figures["auc"] < 1 and figures["n"] > 100
    assert (
        abs(int8["tasks"]["origin"]["int8"]["auc"] - int8["tasks"]["origin"]["fp32"]["auc"]) < 0.05
    )
    assert int8["tasks"]["mass"]["fp32"]["n"] == int8["tasks"]["mass"]["int8"]["n"] > 0


@pytest.mark.parametrize("extra", [0, 9])
def test_values_match_pytorch_on_real_slots_for_any_width(exported, data, extra):
    """Outputs on the same jets with 0 and 9 extra padded track slots: constituent outputs
    are (batch, n) and (batch, n, n) for both widths, equal PyTorch's on the real slots."""
    ckpt, outdir = exported
    module = load_module(ckpt)
    batch = load_batches(module, data[2]["test"], 50, 50)[0]
    for c in ("tracks", "clusters"):
        x, mask = batch[c], batch[f"{c}_mask"]
        batch[c] = torch.cat([x, torch.zeros(50, extra, x.shape[-1])], 1)
        batch[f"{c}_mask"] = torch.cat([mask, torch.zeros(50, extra, dtype=bool)], 1)
    n = batch["tracks"].shape[1]
    for name in ("model.onnx", "model.int8.onnx"):
        sess = session(outdir / name)
        got = outputs(sess, batch)
        assert [g.shape for g in got] == [(50,)] * 4 + [(50, n)] * 2 + [(50, n, n)]
        keeps = real_slots(sess, batch)
        assert (
            keeps[-1].shape == (50, n, n)
            and keeps[-1].sum() == (batch["tracks_mask"].sum(1) ** 2).sum()
        )
        if name == "model.int8.onnx":
            assert all(
                np.isfinite(g[np.broadcast_to(k, g.shape)]).all()
                for g, k in zip(got, keeps, strict=True)
            )
            continue
        with torch.no_grad():
            out = module(batch)
        want = [x for t in module.model.tasks for x in t.export(out[t.output_key])]
        for g, w, k in zip(got, want, keeps, strict=True):
            k = np.broadcast_to(k, g.shape)
            np.testing.assert_allclose(g[k], w.numpy()[k], atol=1e-5, rtol=0)


def test_validation_names_a_wrong_constituent_output(exported, data, monkeypatch):
    """A graph whose jet outputs are right but whose track-origin head is not fails the
    per-output check, naming that output; nothing is left behind."""
    ckpt, _ = exported
    _, root, paths, _ = data

    def perturbed(tagger, *args, **kwargs):
        tagger = copy.deepcopy(tagger)
        with torch.no_grad():
            tagger.heads["origin"].net[-1].bias[1] += 0.3  # one class: softmax moves
        export_onnx(tagger, *args, **kwargs)

    monkeypatch.setattr(stage, "export_onnx", perturbed)
    outdir = root / "broken" / MODEL
    with pytest.raises(HepsnakeError, match="output 'multi_origin_p") as info:
        stage.export(ckpt, MODEL, paths["test"], paths["val"], str(outdir), n_latency=5)
    assert "differs from PyTorch by" in str(info.value) and "\n" not in str(info.value)
    assert not outdir.exists()


def test_athena_validation_checks_each_task_output(exported, data, tmp_path):
    """An Athena-layout graph whose pair head differs from the batched model's fails, though
    its jet outputs agree."""
    ckpt, outdir = exported
    module = load_module(ckpt)
    tagger = copy.deepcopy(module.model)
    with torch.no_grad():
        tagger.heads["vtx"].out[-1].bias += 0.5
    wrong = tmp_path / salt.FILE
    salt.export_athena(tagger, wrong, MODEL, {})
    batch = load_batches(module, data[2]["test"], 50, 50)[0]
    edge = stage.edge_jets(batch, module.spec, stage.max_widths(module.spec, data[2]["test"]))
    with pytest.raises(HepsnakeError, match="differ from the batched model by") as info:
        salt.validate_athena(wrong, outdir / "model.onnx", [batch], edge, str(wrong))
    assert "in 'multi_vtx_pedge'" in str(info.value)
