"""The Salt/Athena ONNX layout: gnn_config as Salt writes it, per-jet runs through ONNX
Runtime against the batched model, jets-only and parameterised models, every model of the
default and tiny runs."""

import copy
import json

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import REPO, TINY, checkpoint
from conftest import stage as stage_of
from test_export import PARAMETERS, data  # noqa: F401 (the module's prepared-toy fixture)

from hepsnake.config import load_model
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import load_module
from hepsnake.export import athena as salt
from hepsnake.export import stage
from hepsnake.export.benchmark import load_batches
from hepsnake.export.onnx import export_onnx, run, session
from hepsnake.names import input_fields

DENSE = {"head": {"hidden": [8]}}  # no encoder: a dense net on the jet variables only


def exported(data, tmp_path, name, model_cfg=TINY, parameters=None, model="tiny_model-v2"):  # noqa: F811
    """Checkpoint ``name`` exported in both layouts; its module and the two paths."""
    module = load_module(checkpoint(data, name, model_cfg, parameters))
    batched, athena = tmp_path / "model.onnx", tmp_path / salt.FILE
    export_onnx(module.model, batched, model, {})
    salt.export_athena(module.model, athena, model, {"model": model})
    return module, batched, athena


def variables(entry):
    """The variable names of a gnn_config input, after checking Salt's per-variable keys."""
    for v in entry["variables"]:
        assert set(v) == {"name", "offset", "scale"} and isinstance(v["name"], str)
        assert isinstance(v["offset"], float) and isinstance(v["scale"], float)
        assert (v["offset"], v["scale"]) == (0.0, 1.0)  # normalisation is in the graph
    return [v["name"] for v in entry["variables"]]


def test_gnn_config_follows_salts_layout(data, tmp_path):  # noqa: F811
    config = data[0]
    _, _, path = exported(data, tmp_path, "tiny")
    proto = onnx.load(str(path))
    assert [p.key for p in proto.metadata_props] == ["gnn_config"]
    gnn = salt.read_gnn_config(path)
    for key, kind in {
        "onnx_model_version": str,
        "model_name": str,
        "output_names": list,
        "inputs": list,
        "input_sequences": list,
        "layers": list,
        "nodes": list,
    }.items():
        assert isinstance(gnn[key], kind), key
    assert "outputs" not in gnn  # that key marks Salt's older v0 layout for Athena
    assert gnn["onnx_model_version"] == "v1"
    assert gnn["model_name"] == "tinymodelv2" == proto.doc_string  # Salt: no _ or -
    sess = session(path)
    names = [o.name for o in sess.get_outputs()]
    assert gnn["output_names"] == names and len(names) == len(config["class_names"])
    # Athena's SaltModel: the model name is what precedes the first _ of every output
    assert {n.split("_", 1)[0] for n in names} == {"tinymodelv2"}
    assert all(o.shape == [] and o.type == "tensor(float)" for o in sess.get_outputs())
    [jets] = gnn["inputs"]
    fields = input_fields(
        stage_of(config, "norm").inputs
    )  # transformed inputs by their prepared names
    assert jets["name"] == "jet_var" and variables(jets) == fields["jets"]
    assert fields["jets"][0] == "log_pt"
    sequences = {s["name"]: variables(s) for s in gnn["input_sequences"]}
    assert sequences == {c: fields[c] for c in ("tracks", "clusters")}
    inputs = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    assert inputs == {
        "jet_features": ("tensor(float)", [1, 5]),
        "track_features": ("tensor(float)", ["n_tracks", 5]),
        "cluster_features": ("tensor(float)", ["n_clusters", 5]),
    }
    assert gnn["hepsnake"] == {"model": "tiny_model-v2"}


def test_per_jet_runs_reproduce_the_batched_model(data, tmp_path):  # noqa: F811
    """Each jet with 0, 1, ... 40 tracks (and clusters up to their 30) through ONNX Runtime
    in the Athena layout gives the batched model's (and PyTorch's) probabilities."""
    module, batched, path = exported(data, tmp_path, "tiny")
    batch = load_batches(module, data[2]["test"], 200, 200)[0]
    widths = stage.max_widths(module.spec, data[2]["test"])
    edge = stage.edge_jets(batch, module.spec, widths)
    athena, ref = session(path), session(batched)
    i = len(edge["label"]) - 1  # a "full" edge jet: every slot of both collections real
    counts_seen = set()
    for k in range(max(widths.values()) + 1):
        counts = {c: min(k, widths[c]) for c in ("tracks", "clusters")}
        feeds = salt.jet_feeds(edge, i, counts)
        assert feeds["track_features"].shape == (counts["tracks"], 5)
        per_jet = np.array(athena.run(None, feeds))
        one = salt.as_batch(edge, i, counts)
        with torch.no_grad():
            torch_p = module.model(one)["logits"].softmax(-1).numpy()[0]
        assert np.isfinite(per_jet).all()
        np.testing.assert_allclose(per_jet, run(ref, one)[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(per_jet, torch_p, atol=1e-4, rtol=0)
        counts_seen.add(counts["tracks"])
    assert counts_seen == set(range(41))
    result = salt.validate_athena(path, batched, [batch], edge, "athena")
    assert result["passed"] and result["max_abs_diff_vs_batched"] <= 1e-5
    assert result["constituent_counts"][0] == 0 and result["constituent_counts"][-1] == 40


def test_validation_catches_a_graph_that_differs(data, tmp_path):  # noqa: F811
    module, batched, _ = exported(data, tmp_path, "tiny")
    tagger = copy.deepcopy(module.model)
    tagger.norms["tracks"].mean += 0.5  # as if exported with another norm dict
    wrong = tmp_path / "wrong.onnx"
    salt.export_athena(tagger, wrong, "tiny", {})
    batch = load_batches(module, data[2]["test"], 100, 100)[0]
    edge = stage.edge_jets(batch, module.spec, stage.max_widths(module.spec, data[2]["test"]))
    with pytest.raises(HepsnakeError, match="differ from the batched model by"):
        salt.validate_athena(wrong, batched, [batch], edge, str(wrong))


@pytest.mark.parametrize(
    ("name", "model_cfg", "parameters", "inputs", "jet_vars"),
    [
        ("dense", DENSE, None, {"jet_features": [1, 5]}, 5),
        (
            "parameterised",
            TINY,
            PARAMETERS,
            {
                "jet_features": [1, 6],
                "track_features": ["n_tracks", 5],
                "cluster_features": ["n_clusters", 5],
            },
            6,
        ),
    ],
)
def test_jets_only_and_parameterised_models(
    data,  # noqa: F811
    tmp_path,
    name,
    model_cfg,
    parameters,
    inputs,
    jet_vars,
):
    config = data[0]
    module, batched, path = exported(data, tmp_path, name, model_cfg, parameters)
    sess = session(path)
    assert {i.name: i.shape for i in sess.get_inputs()} == inputs
    gnn = salt.read_gnn_config(path)
    jets = input_fields(stage_of(config, "norm").inputs)["jets"]
    assert variables(gnn["inputs"][0]) == jets + (["mS"] if parameters else [])
    assert len(gnn["input_sequences"]) == len(inputs) - 1
    batch = load_batches(module, data[2]["test"], 100, 100)[0]
    edge = stage.edge_jets(batch, module.spec, stage.max_widths(module.spec, data[2]["test"]))
    result = salt.validate_athena(path, batched, [batch], edge, name)
    assert result["max_abs_diff_vs_batched"] <= 1e-5 and jet_vars == len(
        variables(gnn["inputs"][0])
    )


def test_stage_writes_and_records_the_athena_layout(data, tmp_path):  # noqa: F811
    _, _, outputs, _ = data
    ckpt = checkpoint(data, "tiny")
    out = tmp_path / "tiny_v2"
    stage.export(
        ckpt, "tiny_v2", outputs["test"], outputs["val"], str(out), n_latency=10, athena=True
    )
    assert (out / salt.FILE).is_file() and (out / "model.onnx").is_file()
    athena = json.loads((out / "validation.json").read_text())["athena"]
    assert athena["passed"] and athena["max_abs_diff_vs_batched"] <= 1e-5
    assert 0 in athena["constituent_counts"] and "not made" in athena["int8"]
    gnn = salt.read_gnn_config(out / salt.FILE)
    assert gnn["model_name"] == "tinyv2" and gnn["hepsnake"]["batched_model"] == "model.onnx"
    assert len(gnn["hepsnake"]["training_config_sha256"]) == 64


def run_models() -> list[str]:
    """The models of the default and the tiny run (the tiny config extends the default)."""
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    assert tiny["extends"] == "config/config.yaml"
    return list(dict.fromkeys([*default, *tiny.get("models", default)]))


@pytest.mark.parametrize("model", run_models())
def test_every_model_of_the_default_and_tiny_runs_has_its_gnn_config(data, tmp_path, model):  # noqa: F811
    """What rule export writes for each model of the toy runs (export.athena is on by
    default): the Athena layout, its gnn_config naming every input sequence, per jet equal to
    the batched model."""
    config = data[0]
    assert config["export"]["athena"] is True
    spec = load_model(config, model)
    module, batched, path = exported(
        data, tmp_path, model, spec["model"], spec.get("parameters"), model=model
    )
    gnn = salt.read_gnn_config(path)
    assert gnn["onnx_model_version"] == "v1" and gnn["model_name"] == salt.model_name(model)
    fields = input_fields(stage_of(config, "norm").inputs)
    sequences = {s["name"]: variables(s) for s in gnn["input_sequences"]}
    assert sequences == {c: fields[c] for c in module.model.collections}
    assert set(module.model.collections) == set(fields) - {"jets"}  # every sequence of the run
    parameters = spec["parameters"]["names"] if spec.get("parameters") else []
    assert variables(gnn["inputs"][0]) == fields["jets"] + parameters
    batch = load_batches(module, data[2]["test"], 100, 100)[0]
    edge = stage.edge_jets(batch, module.spec, stage.max_widths(module.spec, data[2]["test"]))
    result = salt.validate_athena(path, batched, [batch], edge, model)
    assert result["passed"] and result["max_abs_diff_vs_batched"] <= salt.TOLERANCE
