"""Models from config, masking invariance, the loader, a tiny training run, kill and resume."""

import copy
import json
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import REPO, inputs_of, model_spec, prepared_toy, train_contract
from conftest import stage as stage_of
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hepsnake.config import load_model, load_samples, resolve, to_data, write_resolved
from hepsnake.convert.convert import convert
from hepsnake.data.loader import H5Batches, InputSpec
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.evaluate.predict import load_module
from hepsnake.export import stage
from hepsnake.models.encoders import GatedDense, GATv2, Transformer
from hepsnake.models.pooling import AttentionPool
from hepsnake.models.tagger import Tagger
from hepsnake.models.tasks.base import Context
from hepsnake.pause import environment, wait_reached
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.prepared import MASS_GRID
from hepsnake.simulate.toy import simulate, write_root
from hepsnake.training.callbacks import ResumeCheckpoint
from hepsnake.training.run import build_module, resolve_precision, train

MODELS = sorted(p.stem for p in (REPO / "config" / "models").glob("*.yaml"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small prepared dataset (train/val/test, control_train/val, norm and class dicts)."""
    root = tmp_path_factory.mktemp("train")
    jets = {"qcd": 3000, "bib": 1500, "sig": 1500}
    config, outputs = prepared_toy(root, jets, 11, model_dir=str(REPO / "config" / "models"))
    for name in ("data", "mc"):
        branches = simulate(name, "qcd", 800, 12, mismodel=name == "data", **MASS_GRID)
        write_root(branches, root / f"{name}.root")
        sample = {"name": name, "files": [str(root / f"{name}.root")], "reader": "toy"}
        config["samples"] += load_samples([sample | {"label": name, "role": "control"}])
        c = stage_of(config, "convert", sample=name)
        convert(c, root / f"{name}.h5", root / f"{name}.json", show_progress=False)
    control = {s: str(root / f"control_{s}.h5") for s in SPLITS}
    inputs = [str(root / "data.h5"), str(root / "mc.h5")]
    split(stage_of(config, "split"), inputs, control, str(root / "control.json"), control=True)
    return config, root, outputs | {f"control_{s}": path for s, path in control.items()}


def norm_dict(root):
    return yaml.safe_load((root / "norm.yaml").read_text())


@pytest.mark.parametrize("name", MODELS)
def test_every_shipped_model_builds_and_runs(name, prepared):
    config, root, outputs = prepared
    c = train_contract(config, load_model(config, name))
    parameters = c.model.parameters
    spec = InputSpec.from_config(c.inputs, parameters.names if parameters else None)
    param_norm = {"mS": {"mean": 25.0, "std": 20.0}} if parameters else None
    tagger = Tagger(c.model.model, spec, norm_dict(root), Context(["a", "b", "c"]), param_norm)
    batches = H5Batches(outputs["val"], spec, 64, extra_fields=(("jets", "mS"),))
    if parameters:
        batches = WithParameters(batches, ParameterSampler(parameters), 0, fixed={"mS": 40.0})
    out = tagger(next(iter(batches)))
    assert out["logits"].shape == (64, 3) and torch.isfinite(out["logits"]).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_shipped_model_trains_an_epoch_and_exports(name, prepared, tmp_path):
    """Each config/models/*.yaml: one epoch on the toy, then (unless it sets export: false)
    the export stage with its own checks (fp32 vs PyTorch per output, padding, int8)."""
    config, root, outputs = prepared
    model = copy.deepcopy(load_model(config, name))
    model["training"].update(max_epochs=1, batch_size=500, early_stopping=None)
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    control = {s: outputs[f"control_{s}"] for s in ("train", "val")}
    summary = train(
        train_contract(config, model), *paths, str(tmp_path / "m"), control_paths=control
    )
    assert [e["epoch"] for e in summary["epochs"]] == [0]
    if not model["export"]:
        return
    checkpoint = str(tmp_path / "m" / "best.ckpt")
    stage.export(
        checkpoint,
        name,
        outputs["test"],
        outputs["val"],
        str(tmp_path / "onnx"),
        n_validate=300,
        n_latency=5,
    )
    validation = json.loads((tmp_path / "onnx" / "validation.json").read_text())
    assert validation["fp32"]["passed"] and validation["int8"]["passed"]


def padded(batch, extra, rng):
    """The batch with garbage in its padded slots plus ``extra`` garbage slots per collection."""
    out = dict(batch)
    for c in ("tracks", "clusters"):
        x, m = batch[c], batch[f"{c}_mask"]
        b, n, f = x.shape
        garbage = torch.from_numpy(rng.normal(0, 1e3, (b, n + extra, f)).astype(np.float32))
        out[c] = torch.cat([torch.where(m.unsqueeze(-1), x, garbage[:, :n]), garbage[:, n:]], 1)
        out[f"{c}_mask"] = torch.cat([m, torch.zeros(b, extra, dtype=torch.bool)], 1)
    return out


HEADS = {k: {"heads": 2} for k in ("transformer", "gatv2", "cross_attention")}
# an encoder entry "NAME:gated" is NAME with gated dense blocks, "NAME:registers" with 2 registers
OPTIONS = {"gated": {"gated": True}, "registers": {"registers": 2}}


@pytest.mark.parametrize(
    ("encoder", "pooling"),
    [
        ("deepsets", "sum"),
        ("deepsets", "attention"),
        ("transformer", "cross_attention"),
        ("transformer", "mean"),
        ("transformer:gated", "attention"),
        ("transformer:registers", "attention"),
        ("lstm", "attention"),
        ("gatv2", "attention"),
    ],
)
def test_padding_never_changes_outputs(encoder, pooling, prepared):
    config, root, outputs = prepared
    torch.manual_seed(0)
    spec = InputSpec.from_config(inputs_of(config))
    encoder, _, option = encoder.partition(":")
    cfg = {
        "dim": 16,
        "encoder": {"type": encoder, "layers": 2}
        | HEADS.get(encoder, {})
        | OPTIONS.get(option, {}),
        "pooling": {"type": pooling} | HEADS.get(pooling, {}),
        "fourier": {"n_freqs": 2},
    }
    tagger = Tagger(model_spec(cfg), spec, norm_dict(root), Context(["a", "b", "c"])).eval()
    batch = next(iter(H5Batches(outputs["val"], spec, 32)))
    batch["tracks_mask"][0] = False  # a jet without tracks
    rng = np.random.default_rng(1)
    with torch.no_grad():
        ref = tagger(batch)["logits"]
        more = tagger(padded(batch, 7, rng))["logits"]
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(more, ref, atol=1e-6, rtol=1e-5)


def test_gatv2_equals_attention_on_concatenated_pairs():
    """The layer (split products W_i x_i + W_j x_j) equals GATv2 written out on the
    concatenated pairs [x_i, x_j] of every jet's real constituents."""
    torch.manual_seed(0)
    layer = GATv2(dim=8, layers=1, heads=2).eval()
    x, mask = torch.randn(3, 5, 8), torch.rand(3, 5) > 0.3
    mask[:, 0] = True
    w, a, v, norm = layer.w[0], layer.a[0], layer.v[0], layer.norms[0]
    expected = torch.zeros_like(x)
    for jet in range(3):
        real = x[jet, mask[jet]]
        k = len(real)
        pairs = torch.cat([real[:, None].expand(k, k, 8), real[None].expand(k, k, 8)], -1)
        hidden = F.leaky_relu(w(pairs), 0.2).view(k, k, 2, 4)
        alpha = (hidden * a).sum(-1).softmax(dim=1)
        update = torch.einsum("ijh,jhc->ihc", alpha, v(real).view(k, 2, 4)).reshape(k, 8)
        expected[jet, mask[jet]] = norm(real + update)
    with torch.no_grad():
        torch.testing.assert_close(layer(x, mask), expected, rtol=1e-5, atol=1e-5)


def test_loader_batches_match_the_file(prepared):
    config, _, outputs = prepared
    spec = InputSpec.from_config(inputs_of(config, num_inputs={"tracks": 5}))
    loader = H5Batches(outputs["train"], spec, 700, shuffle=True, seed=3)
    with h5py.File(outputs["train"]) as h5:
        jets, tracks = h5["jets"][:], h5["tracks"][:]
    seen = []
    for batch in loader:
        lead = spec.variables["jets"][0]  # the field models read (log_pt for a log1p pt)
        first = int(np.flatnonzero(jets[lead] == batch["jets"][0, 0].item())[0])
        n = len(batch["label"])
        np.testing.assert_array_equal(
            batch["label"].numpy(), jets["flavour_label"][first : first + n]
        )
        width = batch["tracks"].shape[1]
        assert (
            width <= 5
            and batch["tracks_mask"].numpy().sum() == tracks["valid"][first : first + n, :5].sum()
        )
        np.testing.assert_allclose(
            batch["tracks"][..., 3].numpy(), tracks["d0"][first : first + n, :width]
        )
        seen.append(first)
    # ceil(n / 700) shuffled slices covering every jet once, their sizes within one jet
    sizes = np.diff([*sorted(seen), len(jets)])
    assert len(seen) == -(-len(jets) // 700) and seen != sorted(seen) and sorted(seen)[0] == 0
    assert sizes.max() <= 700 and sizes.max() - sizes.min() <= 1
    loader.set_epoch(1)
    assert [start for start, _ in loader.slices()] != seen
    loader.rank, loader.world_size = 1, 2
    assert len(loader) == len(seen) // 2


def run_train(config, root, outputs, outdir, model_cfg, wait=True, env=None):
    """``hepsnake train`` as the rule runs it: a resolved config file (with ``model_cfg`` as
    model ``m``) and the model's name (``env``: the process's environment)."""
    resolved = Path(outdir).parent / f"{Path(outdir).name}.resolved.yaml"
    write_resolved(resolve(config, models={"m": model_cfg}), resolved)
    cmd = [
        shutil.which("hepsnake"),
        "train",
        "--config",
        str(resolved),
        "--model",
        "m",
        "--train",
        outputs["train"],
        "--val",
        outputs["val"],
        "--norm",
        str(root / "norm.yaml"),
        "--class-dict",
        str(root / "class.yaml"),
        "--outdir",
        str(outdir),
        "--threads",
        "1",
    ]
    if model_cfg.get("adversarial"):
        cmd += ["--control-train", outputs["control_train"]]
        cmd += ["--control-val", outputs["control_val"]]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    if wait:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
    return proc


def small_model(config, epochs, name="baseline"):
    model = copy.deepcopy(load_model(config, name))
    model["model"].update(dim=16, init_nets={"default": {"hidden": [16]}}, head={"hidden": [16]})
    model["training"].update(
        max_epochs=epochs, batch_size=500, print_metrics=True, early_stopping=None
    )
    return model


def test_tiny_training_run(prepared, tmp_path):
    config, root, outputs = prepared
    run_train(config, root, outputs, tmp_path / "m", small_model(config, 3))
    out = tmp_path / "m"
    assert sorted(p.name for p in out.iterdir()) == [
        "best.ckpt",
        "config.yaml",
        "last.ckpt",
        "metrics.csv",
        "metrics.json",
    ]
    summary = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in summary["epochs"]] == [0, 1, 2]
    assert summary["epochs"][-1]["val_loss"] < summary["epochs"][0]["val_loss"]
    assert summary["epochs"][-1]["val_acc"] > 0.4  # 3 balanced classes: chance is 1/3
    assert summary["best_epoch"] == min(summary["epochs"], key=lambda e: e["val_loss"])["epoch"]
    assert "val_loss" in (out / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("name", ["baseline", "adversarial"])
def test_kill_and_resume_equals_uninterrupted(name, prepared, tmp_path):
    config, root, outputs = prepared
    model = small_model(config, 6, name)
    run_train(config, root, outputs, tmp_path / "straight", model)
    killed = tmp_path / "killed"
    env = os.environ | environment(tmp_path, "train.epoch_end")
    proc = run_train(config, root, outputs, killed, model, wait=False, env=env)
    try:  # killed after the first epoch's resume checkpoint, whatever the machine's speed
        assert wait_reached(tmp_path, "train.epoch_end") == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "last.ckpt").exists()
    resume = killed / ".work" / "resume.ckpt"
    assert torch.load(resume, weights_only=False)["epoch"] == 0
    run_train(config, root, outputs, killed, model)
    a = torch.load(tmp_path / "straight" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(killed / "last.ckpt", weights_only=False)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert [e["epoch"] for e in resumed["epochs"]] == list(range(6))
    np.testing.assert_allclose(
        [e["val_loss"] for e in resumed["epochs"]],
        [e["val_loss"] for e in straight["epochs"]],
        rtol=1e-5,
    )


def test_ddp_two_cpu_processes(prepared, tmp_path):
    """The multi-device path: Lightning DDP over gloo with two CPU processes."""
    config, root, outputs = prepared
    model = small_model(config, 2)
    model["training"].update(accelerator="cpu", devices=2, batch_size=300)
    proc = run_train(config, root, outputs, tmp_path / "ddp", model, wait=False)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert "distributed_backend=gloo" in out and "Starting with 2 processes" in out
    summary = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert [e["epoch"] for e in summary["epochs"]] == [0, 1]
    assert (tmp_path / "ddp" / "best.ckpt").is_file()


def module_of(config, root, model_cfg):
    return build_module(train_contract(config, model_cfg), norm_dict(root), [1.0, 1.0, 1.0])


def test_plateau_settings_come_from_config(prepared):
    config, root, _ = prepared
    model = small_model(config, 1)
    model["training"].update(schedule="plateau", plateau={"factor": 0.3, "patience": 4})
    scheduler = module_of(config, root, model).configure_optimizers()["lr_scheduler"]
    assert scheduler["monitor"] == "val_loss"
    assert (scheduler["scheduler"].factor, scheduler["scheduler"].patience) == (0.3, 4)
    defaults = small_model(config, 1)["training"]["plateau"]  # filled by the schema
    assert defaults == {"factor": 0.5, "patience": 2}


def test_resolve_precision(monkeypatch):
    assert resolve_precision("auto", "gpu") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("16-mixed", "gpu") == "16-mixed"  # explicit settings pass through
    for cuda, expected in ((False, "32-true"), (True, "bf16-mixed")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert resolve_precision("auto", "auto") == expected


def test_per_jet_weights_enter_the_loss(prepared):
    config, root, outputs = prepared
    module = module_of(config, root, small_model(config, 1)).eval()
    batch = next(iter(H5Batches(outputs["val"], module.spec, 200)))
    half = {k: v[100:] for k, v in batch.items()}
    half["weight"] = torch.ones(100)
    weighted = dict(batch, weight=torch.cat([torch.zeros(100), torch.ones(100)]))
    with torch.no_grad():
        plain = module.losses(dict(batch, weight=torch.ones(200)))["loss"]
        zeroed = module.losses(weighted)["loss"]
        ref = module.losses(half)["loss"]
    torch.testing.assert_close(zeroed, ref)  # weight 0 removes a jet from the loss
    assert not torch.isclose(zeroed, plain)


def train_here(config, root, outputs, outdir, model_cfg):
    """``train`` in this process (no CLI start-up): the summary it returns."""
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    return train(train_contract(config, model_cfg), *paths, str(outdir))


def test_cpu_training_is_deterministic_without_nan_filling(prepared, tmp_path, monkeypatch):
    """Deterministic algorithms on CPU, but not torch's NaN-filling of every new tensor that
    comes with them (it cost ~40 % of a small transformer's CPU step)."""
    config, root, outputs = prepared
    monkeypatch.setattr(torch.utils.deterministic, "fill_uninitialized_memory", True)
    train_here(config, root, outputs, tmp_path / "m", small_model(config, 1))
    assert not torch.utils.deterministic.fill_uninitialized_memory


def test_registers_let_the_pooling_count_constituents():
    """Softmax attention and pooling give a jet of n copies of one constituent the same
    output whatever n; with a register token the output depends on n."""
    torch.manual_seed(0)
    token = torch.randn(1, 1, 8)
    for registers in (0, 1):
        encoder = Transformer(8, layers=1, heads=2, registers=registers).eval()
        pool = AttentionPool(8)
        pooled = []
        for n in (2, 5):
            mask = torch.ones(1, n, dtype=torch.bool)
            with torch.no_grad():
                encoded = encoder(token.expand(1, n, 8), mask)
                pooled.append(pool(encoded, F.pad(mask, (0, registers), value=True)))
        assert encoded.shape[1] == 5 + registers
        assert torch.allclose(*pooled, atol=1e-6) == (registers == 0)


def test_gated_dense_is_a_gated_linear_unit():
    block = GatedDense(4, 6)
    x = torch.randn(3, 5, 4)
    a, b = F.linear(x, block.inner.weight, block.inner.bias).split(6, dim=-1)
    torch.testing.assert_close(block(x), block.out(F.silu(a) * b))


@pytest.mark.parametrize("final", [None, True, False])
def test_init_net_final_activation(prepared, final):
    """An init net ends with its activation unless ``final_activation: false`` (Salt's init
    nets end linear); a config without the key keeps the activation."""
    config, root, _ = prepared
    spec = InputSpec.from_config(inputs_of(config))
    net = {"hidden": [8]} | ({} if final is None else {"final_activation": final})
    cfg = {
        "dim": 16,
        "encoder": {"type": "deepsets"},
        "pooling": {"type": "mean"},
        "init_nets": {"default": net},
    }
    tagger = Tagger(model_spec(cfg), spec, norm_dict(root), Context(["a", "b", "c"]))
    for init_net in tagger.init_nets.values():
        assert isinstance(init_net[-1], torch.nn.Linear) == (final is False)


def test_compiled_training_checkpoint_reloads(prepared, tmp_path):
    config, root, outputs = prepared
    model = small_model(config, 1)
    # the eager backend goes through dynamo like inductor, without its C++ build (~30 s here)
    model["training"].update(compile=True, compile_backend="eager", print_metrics=False)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    train_here(config, root, outputs, tmp_path / "m", model)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it did compile
    keys = torch.load(tmp_path / "m" / "best.ckpt", weights_only=False)["state_dict"]
    assert not any("_orig_mod" in k for k in keys)
    module = load_module(tmp_path / "m" / "best.ckpt")  # strict: every key must match
    batch = next(iter(H5Batches(outputs["val"], module.spec, 64)))
    assert torch.isfinite(module(batch)["logits"]).all()


def test_tensorboard_logger_writes_events(prepared, tmp_path):
    config, root, outputs = prepared
    model = small_model(config, 1)
    model["training"].update(tensorboard=True, print_metrics=False)
    train_here(config, root, outputs, tmp_path / "m", model)
    events = list((tmp_path / "m" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    reader = EventAccumulator(str(events[0]))
    reader.Reload()
    assert {"val_loss", "train_loss"} <= set(reader.Tags()["scalars"])


def test_early_stopping_ends_a_plateau(prepared, tmp_path):
    config, root, outputs = prepared
    model = small_model(config, 10)
    # a learning rate this small leaves the validation loss flat from the first epoch
    model["training"].update(
        lr=1e-9, schedule="none", early_stopping={"patience": 1, "min_delta": 0.01}
    )
    summary = train_here(config, root, outputs, tmp_path / "m", model)
    assert [e["epoch"] for e in summary["epochs"]] == [0, 1]


class Killed(Exception):
    """Stands for a kill -9 right after the resume checkpoint of an epoch was written."""


def killed_after_first_epoch(monkeypatch, config, root, outputs, outdir, model_cfg):
    """Run ``train`` until its first resume checkpoint exists, then stop it dead."""
    original = ResumeCheckpoint.on_train_epoch_end

    def write_then_die(self, trainer, module):
        original(self, trainer, module)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ResumeCheckpoint, "on_train_epoch_end", write_then_die)
        with pytest.raises(Killed):
            train_here(config, root, outputs, outdir, model_cfg)
    assert (outdir / ".work" / "resume.ckpt").is_file()


def val_losses(summary):
    return [e["val_loss"] for e in summary["epochs"]]


def test_resume_after_a_kill_with_the_same_config(prepared, tmp_path, monkeypatch, caplog):
    config, root, outputs = prepared
    model = small_model(config, 2)
    killed_after_first_epoch(monkeypatch, config, root, outputs, tmp_path / "m", model)
    with caplog.at_level(logging.INFO, logger="hepsnake"):
        resumed = train_here(config, root, outputs, tmp_path / "m", model)
    assert "resuming from" in caplog.text and "starting fresh" not in caplog.text
    straight = train_here(config, root, outputs, tmp_path / "straight", model)
    np.testing.assert_allclose(val_losses(resumed), val_losses(straight), rtol=1e-5)


@pytest.mark.parametrize(
    "change", [{"training": {"lr": 0.02}}, {"model": {"dim": 24, "head": {"hidden": [24]}}}]
)
def test_a_config_change_after_a_kill_starts_fresh(change, prepared, tmp_path, monkeypatch, caplog):
    config, root, outputs = prepared
    old = small_model(config, 2)
    new = copy.deepcopy(old)
    for section, values in change.items():
        new[section].update(values)
    out = tmp_path / "m"
    killed_after_first_epoch(monkeypatch, config, root, outputs, out, old)
    with caplog.at_level(logging.INFO, logger="hepsnake"):
        rerun = train_here(config, root, outputs, out, new)  # no size mismatch
    resume = out / ".work" / "resume.ckpt"
    assert f"config changed since {resume}: starting fresh" in caplog.text
    assert "resuming from" not in caplog.text
    fresh = train_here(config, root, outputs, tmp_path / "fresh", new)
    np.testing.assert_allclose(val_losses(rerun), val_losses(fresh), rtol=1e-5)
    killed_again = tmp_path / "old"
    killed_after_first_epoch(monkeypatch, config, root, outputs, killed_again, old)
    resumed_old = train_here(config, root, outputs, killed_again, old)
    assert not np.allclose(val_losses(rerun), val_losses(resumed_old), rtol=1e-3)
    saved = torch.load(out / "best.ckpt", weights_only=True)["hyper_parameters"]
    expected = train_contract(config, new).model  # the new config, defaults filled
    assert saved["model_cfg"] == to_data(expected.model)
    assert saved["training_cfg"] == to_data(expected.training)


class Payload:
    """Unpickling this object opens (creates) the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickled_resume_checkpoint_is_never_loaded(prepared, tmp_path, caplog):
    config, root, outputs = prepared
    marker = tmp_path / "PWNED"
    work = tmp_path / "m" / ".work"
    work.mkdir(parents=True)
    torch.save({"epoch": 0, "hyper_parameters": Payload(str(marker))}, work / "resume.ckpt")
    with caplog.at_level(logging.INFO, logger="hepsnake"):
        summary = train_here(config, root, outputs, tmp_path / "m", small_model(config, 1))
    assert not marker.exists()
    assert "refused" in caplog.text and "starting fresh" in caplog.text
    assert [e["epoch"] for e in summary["epochs"]] == [0]
