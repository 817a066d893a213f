"""ONNX export: names, dynamic axes, metadata, validation against PyTorch, int8, failures."""

import copy
import json

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import TINY, checkpoint, prepared_toy
from conftest import stage as stage_of
from onnx import TensorProto, helper

from hepsnake import __version__
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import load_module
from hepsnake.export import stage
from hepsnake.export.benchmark import load_batches
from hepsnake.export.onnx import export_onnx, feeds, input_names, metadata, run, session
from hepsnake.export.quantise import quantise, weight_errors
from hepsnake.names import input_fields

PARAMETERS = {"names": ["mS"], "train": {"mS": [5, 16, 55]}, "test": {"mS": [5, 16, 40, 55]}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A few hundred prepared toy jets per split, the norm dict and the config."""
    root = tmp_path_factory.mktemp("export")
    fractions = {"fractions": {"train": 0.4, "val": 0.3, "test": 0.3}}
    jets = {"qcd": 500, "bib": 250, "sig": 250}
    config, outputs = prepared_toy(root, jets, 5, prepare=fractions)
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    return config, root, outputs, norm


@pytest.fixture(scope="module")
def exported(data):
    _, root, outputs, _ = data
    ckpt = checkpoint(data, "tiny")
    outdir = root / "onnx" / "tiny"
    summary = stage.export(
        ckpt, "tiny", outputs["test"], outputs["val"], str(outdir), "abc123", n_latency=20
    )
    return ckpt, outdir, summary


def test_stage_writes_validated_models_and_benchmark(exported, data):
    _, outdir, summary = exported
    for name in stage.OUTPUTS:
        assert (outdir / name).is_file(), name
    assert not list(outdir.parent.glob(".*"))  # no temporary leftovers
    validation = json.loads((outdir / "validation.json").read_text())
    fp32, int8 = validation["fp32"], validation["int8"]
    assert fp32["passed"] and fp32["max_abs_diff_vs_pytorch"] <= 1e-4
    assert fp32["max_abs_diff_vs_pytorch_edge_jets"] <= 1e-4 and fp32["n_edge_jets"] == 16
    assert fp32["padding_max_abs_diff"] <= 1e-5 and int8["padding_max_abs_diff"] <= 1e-5
    assert int8["quantisation"] == "dynamic" and int8["weight_error_max_steps"] <= 0.51
    assert 0 <= int8["max_abs_diff_vs_fp32"] < 0.5
    assert abs(int8["auc_delta"]) < 0.05 and 0 < int8["auc_int8"] < 1
    bench = json.loads((outdir / "benchmark.json").read_text())
    assert set(bench["backends"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    for row in bench["backends"].values():
        assert row["latency_ms_median"] > 0 and row["throughput_jets_per_s"] > 0
    assert bench["backends"]["pytorch"]["auc"] == pytest.approx(int8["auc_fp32"], abs=1e-6)
    assert set(bench["targets"]) == set(summary["targets"])
    assert all(isinstance(t["met"], bool) for t in bench["targets"].values())


def test_onnx_names_types_and_metadata(exported, data):
    config, _, _, norm = data
    _, outdir, _ = exported
    for name in ("model.onnx", "model.int8.onnx"):
        onnx.checker.check_model(str(outdir / name), full_check=True)
    sess = session(outdir / "model.onnx")
    inputs = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    assert inputs["jets_data"] == ("tensor(float)", ["batch", 5])
    for c in ("tracks", "clusters"):
        assert inputs[f"{c}_data"] == ("tensor(float)", ["batch", f"n_{c}", 5])
        assert inputs[f"{c}_mask"] == ("tensor(bool)", ["batch", f"n_{c}"])
    outputs = {o.name: o.shape for o in sess.get_outputs()}
    assert outputs == {f"tiny_p{c}": ["batch"] for c in config["class_names"]}
    meta = metadata(outdir / "model.onnx")
    variables = json.loads(meta["input_variables"])
    # transformed inputs by their prepared names
    fields = input_fields(stage_of(config, "norm").inputs)
    assert variables == {f"{c}_data": fields[c] for c in ("jets", "tracks", "clusters")}
    assert variables["jets_data"][0] == "log_pt" and variables["clusters_data"][0] == "log_e"
    assert json.loads(meta["input_names"]) == [i.name for i in sess.get_inputs()]
    assert json.loads(meta["class_names"]) == config["class_names"]
    assert json.loads(meta["norm"]) == json.loads(json.dumps(norm))
    assert json.loads(meta["parameters"]) is None
    assert len(meta["training_config_sha256"]) == 64
    assert meta["git_commit"] == "abc123" and meta["hepsnake_version"] == __version__
    int8_meta = metadata(outdir / "model.int8.onnx")
    assert int8_meta["quantisation"] == "dynamic int8" and int8_meta["norm"] == meta["norm"]


@pytest.mark.parametrize(("batch_size", "extra"), [(1, 0), (7, 3), (64, 12)])
def test_dynamic_batch_and_constituent_axes(exported, data, batch_size, extra):
    ckpt, outdir, _ = exported
    module = load_module(ckpt)
    batch = load_batches(module, data[2]["test"], batch_size, batch_size)[0]
    for c in ("tracks", "clusters"):  # more (zero) padded slots than any jet needs
        x, mask = batch[c], batch[f"{c}_mask"]
        batch[c] = torch.cat([x, torch.zeros(batch_size, extra, x.shape[-1])], 1)
        batch[f"{c}_mask"] = torch.cat([mask, torch.zeros(batch_size, extra, dtype=bool)], 1)
    with torch.no_grad():
        ref = module.model(batch)["logits"].softmax(-1).numpy()
    out = run(session(outdir / "model.onnx"), batch)
    assert out.shape == ref.shape == (batch_size, 3)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_perturbed_norm_fails_validation_and_leaves_nothing(exported, data, monkeypatch):
    ckpt, _, _ = exported
    _, root, outputs, _ = data

    def perturbed(tagger, *args, **kwargs):
        tagger = copy.deepcopy(tagger)
        tagger.norms["tracks"].mean += 0.5  # as if exported with another norm dict
        export_onnx(tagger, *args, **kwargs)

    monkeypatch.setattr(stage, "export_onnx", perturbed)
    outdir = root / "broken" / "tiny"
    with pytest.raises(HepsnakeError) as info:
        stage.export(ckpt, "tiny", outputs["test"], outputs["val"], str(outdir), n_latency=5)
    message = str(info.value)
    assert message.startswith(str(outdir / "model.onnx")) and "\n" not in message
    assert "differs from PyTorch by" in message and "tolerance 0.0001" in message
    assert not outdir.exists() and not list(outdir.parent.iterdir())


def test_unknown_quantisation_is_an_error(exported, data):
    ckpt, _, _ = exported
    with pytest.raises(HepsnakeError, match="'int4' is not one of"):
        stage.export(ckpt, "tiny", data[2]["test"], data[2]["val"], "unused", quantise="int4")


def test_static_quantisation_keeps_padding_invariance(exported, data, tmp_path):
    ckpt, outdir, _ = exported
    module = load_module(ckpt)
    names = input_names(module.model)
    calibration = [feeds(b, names) for b in load_batches(module, data[2]["val"], 200, 100)]
    int8 = tmp_path / "static.onnx"
    quantise(outdir / "model.onnx", int8, "static", calibration)
    assert max(weight_errors(outdir / "model.onnx", int8).values()) <= 0.51
    batches = load_batches(module, data[2]["test"], 200, 100)
    edge = stage.edge_jets(batches[0], module.spec, stage.max_widths(module.spec, data[2]["test"]))
    result = stage.validate_int8(outdir / "model.onnx", int8, module, batches, edge, "static")
    assert result["padding_max_abs_diff"] == 0.0 and result["extra_padding_max_abs_diff"] == 0.0


@pytest.mark.parametrize(
    ("name", "model_cfg", "parameters"),
    [
        ("parameterised", TINY, PARAMETERS),
        (
            "attention",
            {
                **TINY,
                "encoder": {"type": "transformer", "layers": 1, "heads": 2},
                "pooling": {"type": "cross_attention", "heads": 2},
            },
            None,
        ),
    ],
)
def test_other_architectures_export_and_validate(data, tmp_path, name, model_cfg, parameters):
    _, _, outputs, _ = data
    module = load_module(checkpoint(data, name, model_cfg, parameters))
    path = tmp_path / "model.onnx"
    export_onnx(module.model, path, name, {"model_name": name})
    names = [i.name for i in session(path).get_inputs()]
    assert ("params_data" in names) == bool(parameters)
    batches = load_batches(module, outputs["test"], 300, 150)
    edge = stage.edge_jets(batches[0], module.spec, stage.max_widths(module.spec, outputs["test"]))
    result = stage.validate_fp32(path, module, batches, edge, str(path))
    assert result["max_abs_diff_vs_pytorch"] <= 1e-4 and result["padding_max_abs_diff"] <= 1e-5


@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_check_finds_a_mangled_weight(exported, tmp_path, per_channel):
    """weight_errors reads per-tensor and per-channel scales, and flags a transposed weight."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _, outdir, _ = exported
    fp32, int8 = outdir / "model.onnx", tmp_path / "int8.onnx"
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=per_channel)
    errors = weight_errors(fp32, int8)
    assert errors and max(errors.values()) <= 0.51
    proto = onnx.load(str(int8))
    square = next(
        t
        for t in proto.graph.initializer
        if t.name.endswith("_quantized") and len(t.dims) == 2 and t.dims[0] == t.dims[1]
    )
    values = onnx.numpy_helper.to_array(square)
    square.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(values.T), square.name))
    onnx.save_model(proto, str(int8))
    assert weight_errors(fp32, int8)[square.name.removesuffix("_quantized")] > 1


def test_padding_check_catches_a_graph_that_reads_padded_slots(exported, data, tmp_path):
    """A graph that sums every track slot, masked or not, fails the padding check the export
    stage applies (the shipped model, which masks, passes it)."""
    ckpt, outdir, _ = exported
    module = load_module(ckpt)
    batches = load_batches(module, data[2]["test"], 200, 100)
    f = len(module.spec.variables["tracks"])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["tracks_data"], ["summed"], keepdims=0, axes=[1, 2]),
            helper.make_node("Sigmoid", ["summed"], ["leaky_psig"]),
        ],
        "leaky",
        [
            helper.make_tensor_value_info("tracks_data", TensorProto.FLOAT, ["b", "n", f]),
            helper.make_tensor_value_info("tracks_mask", TensorProto.BOOL, ["b", "n"]),
        ],
        [helper.make_tensor_value_info("leaky_psig", TensorProto.FLOAT, ["b"])],
    )
    leaky = tmp_path / "leaky.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), leaky)
    assert stage.padding_diff(session(leaky), module.spec, batches) > stage.PADDING_TOLERANCE
    shipped = stage.padding_diff(session(outdir / "model.onnx"), module.spec, batches)
    assert shipped <= stage.PADDING_TOLERANCE
