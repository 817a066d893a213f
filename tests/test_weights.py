"""Real MC weights: an NLO-like sample (±2.26e5, 13 % negative) through convert, split,
training and evaluation; the negative-weight policies and the normalisation; empty and rare
classes at split time; a non-finite loss stops training with one line."""

import copy
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY, TRAINING, default_config, stage, train_contract

from hepsnake.config import build, load_model, resolve, validate, write_resolved
from hepsnake.config.contracts import WeightsSpec, section, trained
from hepsnake.data.loader import H5Batches, InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import predict
from hepsnake.evaluate.stage import evaluate
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.prepare.weights import fit_reweighter
from hepsnake.simulate.prepared import MASS_GRID, convert_samples
from hepsnake.simulate.toy import simulate, write_root
from hepsnake.training.finite import FiniteLoss, NonFiniteError
from hepsnake.training.module import TaggerModule
from hepsnake.training.run import train

NLO = {"qcd": ("qcd", None, 2000), "sig": ("sig", 16.0, 1000), "bib": ("bib", None, 1000)}
GEN_WEIGHT = 2.26e5  # |genWeight| of the CMS ttbar NLO sample
NEGATIVE = 0.13  # its share of negative weights


def nlo_weights(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < NEGATIVE, -GEN_WEIGHT, GEN_WEIGHT).astype(np.float32)


@pytest.fixture(scope="module")
def nlo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """Toy qcd, sig and bib samples whose event weights are NLO-like, converted."""
    root = tmp_path_factory.mktemp("nlo")
    samples = []
    for i, (name, (process, mass, n)) in enumerate(NLO.items()):
        branches = simulate(name, process, n, 31 + i, mass=mass, **MASS_GRID)
        branches["mcEventWeight"] = nlo_weights(len(branches["mcEventWeight"]), i)
        write_root(branches, root / f"{name}.root")
        sample = {"name": name, "files": [str(root / f"{name}.root")], "reader": "toy"}
        samples.append(sample | {"label": process, "params": {"mS": mass} if mass else {}})
    model_dir = str(REPO / "config" / "models")
    config = validate(default_config() | {"samples": samples, "model_dir": model_dir})
    convert_samples(resolve(config), root)
    return config, root


def split_nlo(config: dict, root: Path, out: Path, **prepare: object) -> tuple[dict, dict]:
    """Split the converted samples into ``out`` with ``prepare`` keys replaced."""
    config = {**config, "prepare": {**config["prepare"], **prepare}}
    outputs = {s: str(out / f"{s}.h5") for s in SPLITS}
    inputs = [str(root / f"{name}.h5") for name in NLO]
    return outputs, split(stage(config, "split"), inputs, outputs, str(out / "summary.json"))


def read(path: str) -> np.ndarray:
    with h5py.File(path) as h5:
        return h5["jets"][:]


def converted_weights(root: Path, name: str) -> np.ndarray:
    with h5py.File(root / f"{name}.h5") as h5:
        return h5["jets"].fields("weight")[:].astype(np.float64)


def test_convert_summary_gives_the_negative_weight_figures(nlo: tuple) -> None:
    _, root = nlo
    for name in NLO:
        summary = json.loads((root / f"{name}.json").read_text())
        w = converted_weights(root, name)
        fraction = float(np.mean(w < 0))
        assert 0.1 < fraction < 0.16
        figures = summary["negative_weights"]
        assert figures["fraction"] == pytest.approx(fraction, abs=1e-12)
        share = np.abs(w[w < 0]).sum() / np.abs(w).sum()  # |w| alike: the same share
        assert figures["abs_share"] == pytest.approx(share, abs=1e-9)
        [warning] = summary["warnings"]
        assert warning["code"] == "negative_weights"
        assert f"sample '{name}': {100 * fraction:.3g} % of the jets" in warning["message"]
        assert "prepare.negative_weights" in warning["advice"]


POLICY = {"abs": np.abs, "keep": lambda w: w, "zero": lambda w: np.maximum(w, 0.0)}


@pytest.mark.parametrize("policy", ["abs", "keep", "zero"])
def test_each_negative_weight_policy(policy: str, nlo: tuple, tmp_path: Path) -> None:
    """Training weights: the policy's weight (abs |w|, keep w, zero max(w, 0)) times one factor
    per class (balance_classes: equal signed class totals), normalised to mean |weight| 1
    over the training split; every training batch's loss is finite; the split summary gives
    the negative-weight figures per sample and the policy applied."""
    config, root = nlo
    outputs, report = split_nlo(config, root, tmp_path, negative_weights=policy)
    train = read(outputs["train"])
    w, tw = train["weight"].astype(np.float64), train["train_weight"].astype(np.float64)
    labels = train["flavour_label"]
    assert np.abs(tw).mean() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(w).max() == GEN_WEIGHT and np.abs(tw).max() < 2
    negative = w < 0
    signs = {"abs": np.ones_like(w), "keep": np.sign(w), "zero": np.where(negative, 0.0, 1.0)}
    np.testing.assert_array_equal(np.sign(tw), signs[policy])
    expected = POLICY[policy](w)
    for c in range(3):
        sel = (labels == c) & (expected != 0)
        factor = tw[sel] / expected[sel]
        np.testing.assert_allclose(factor, factor[0], rtol=1e-6)
    totals = [tw[labels == c].sum() for c in range(3)]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)

    norm_out = (str(tmp_path / "norm.yaml"), str(tmp_path / "c.yaml"))
    norm_stats(stage(config, "norm"), outputs["train"], *norm_out)
    norm = yaml.safe_load((tmp_path / "norm.yaml").read_text())
    class_weights = yaml.safe_load((tmp_path / "c.yaml").read_text())["jets"]["flavour_label"]
    assert all(np.isfinite(class_weights)) and min(class_weights) > 0
    torch.manual_seed(0)
    tiny = train_contract(config, {"model": TINY, "training": TRAINING})
    module = TaggerModule(trained(tiny, norm, class_weights))
    with torch.no_grad():
        for batch in H5Batches(outputs["train"], module.spec, 32):
            assert torch.isfinite(module.losses(batch)["loss"])

    for name in NLO:
        kept = converted_weights(root, name)  # every jet is in a split here
        figures = report["samples"][name]["negative_weights"]
        assert figures["fraction"] == pytest.approx(float(np.mean(kept < 0)), abs=1e-12)
    messages = [w["message"] for w in report["warnings"] if w["code"] == "negative_weights"]
    assert len(messages) == 3
    assert all(f"training weights: prepare.negative_weights: {policy} (" in m for m in messages)


def test_keep_cannot_balance_a_class_whose_weights_sum_below_zero() -> None:
    jets = np.zeros(400, [("flavour_label", np.int32), ("weight", np.float32)])
    jets["flavour_label"] = np.arange(400) % 2
    jets["weight"] = np.where(jets["flavour_label"] == 1, -1.0, 1.0)
    jets["weight"][1:40:2] = 1.0  # class 1: 20 positive, 180 negative jets
    block = {"mode": "none", "balance_classes": True, "use_physics_weights": True}
    cfg = build(WeightsSpec, section("properties/prepare/properties/weights", block, "test"))
    classes = {0: 200, 1: 200}
    fit_reweighter(lambda: [jets], classes, {}, cfg, ["a", "b"], "abs")  # |w|: fine
    with pytest.raises(HepsnakeError, match=r"class 'b': its training weights sum to -160 "):
        fit_reweighter(lambda: [jets], classes, {}, cfg, ["a", "b"], "keep")


def test_a_class_missing_from_a_split_is_an_error_or_dropped(nlo: tuple, tmp_path: Path) -> None:
    """bib jets only in the test split: the split stops before writing anything, naming the
    class and the split; with empty_class: drop, bib leaves every split, with a warning."""
    config, root = nlo
    samples = [s | {"role": "test"} if s["name"] == "bib" else s for s in config["samples"]]
    config = {**config, "samples": samples}
    (tmp_path / "error").mkdir()
    with pytest.raises(HepsnakeError) as error:
        split_nlo(config, root, tmp_path / "error")
    assert str(error.value).startswith(
        "split 'train': class 'bib' has no jets (jets per split: train 0, val 0, test 1000)"
    )
    assert list((tmp_path / "error").iterdir()) == []
    outputs, report = split_nlo(config, root, tmp_path, empty_class="drop")
    for s in SPLITS:
        labels = read(outputs[s])["flavour_label"]
        assert 2 not in labels and {0, 1} <= set(labels.tolist())
    [empty] = [w for w in report["warnings"] if w["code"] == "empty_class"]
    assert empty["message"].startswith("class 'bib' has no jets in the train and val split")


def test_a_rare_class_is_a_warning_in_the_log_and_the_summary(
    nlo: tuple, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config, root = nlo
    (tmp_path / "default").mkdir()
    _, report = split_nlo(config, root, tmp_path / "default")  # min_class_jets 100
    assert not [w for w in report["warnings"] if w["code"] == "rare_class"]
    with caplog.at_level(logging.WARNING, logger="hepsnake"):
        outputs, report = split_nlo(config, root, tmp_path, min_class_jets=1000)
    counts = np.bincount(read(outputs["train"])["flavour_label"], minlength=3)
    assert counts[0] >= 1000 > max(counts[1], counts[2])  # sig and bib: ~800 training jets
    rare = [w["message"] for w in report["warnings"] if w["code"] == "rare_class"]
    assert rare == [
        f"class '{c}' has {counts[i]} training jets (fewer than prepare.min_class_jets = 1000)"
        for i, c in ((1, "sig"), (2, "bib"))
    ]
    for message in rare:
        assert f"split: {message}" in caplog.text


def small_model(config: dict, epochs: int) -> dict:
    model = copy.deepcopy(load_model(config, "baseline"))
    model["model"].update(dim=8, init_nets={"default": {"hidden": [8]}}, head={"hidden": [8]})
    model["training"].update(max_epochs=epochs, batch_size=100, early_stopping=None)
    return model


def hepsnake_train(config: dict, model: dict, root: Path, train: str, val: str, out: Path):
    """``hepsnake train`` as the rule runs it: the resolved config (``model`` as model ``m``)
    and the model's name."""
    resolved = root / "resolved.yaml"
    write_resolved(resolve(config, models={"m": model}), resolved)
    cmd = [shutil.which("hepsnake"), "train", "--config", str(resolved), "--model", "m"]
    cmd += ["--train", train, "--val", val, "--norm", str(root / "norm.yaml")]
    cmd += ["--class-dict", str(root / "c.yaml"), "--outdir", str(out), "--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def numbers(value: object) -> list[float]:
    """Every number in a JSON value."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return [float(value)] if is_number else []


@pytest.mark.parametrize("policy", ["abs", "keep"])
def test_an_nlo_sample_trains_and_evaluates_with_finite_metrics(
    policy: str, nlo: tuple, tmp_path: Path
) -> None:
    """`hepsnake train` on the signed-weight sample (it died with ``Input contains NaN`` or in
    the validation AUC), then predict and evaluate with signed physics weights in the ROCs:
    every figure finite, and each says which weights it used."""
    config, root = nlo
    outputs, _ = split_nlo(config, root, tmp_path, negative_weights=policy)
    norm_out = (str(tmp_path / "norm.yaml"), str(tmp_path / "c.yaml"))
    norm_stats(stage(config, "norm"), outputs["train"], *norm_out)
    out = tmp_path / "m"
    model = small_model(config, 2)
    proc = hepsnake_train(config, model, tmp_path, outputs["train"], outputs["val"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = json.loads((out / "metrics.json").read_text())
    for epoch in history["epochs"]:
        assert np.isfinite([epoch["val_loss"], epoch["val_auc"], epoch["train_loss"]]).all()
    assert all(w["code"] == "signed_roc" for w in history["warnings"])
    assert bool(history["warnings"]) == (policy == "keep")  # validation weights signed

    predict("m", str(out / "best.ckpt"), outputs["test"], str(tmp_path / "pred.h5"))
    (tmp_path / "plots").mkdir()
    physical = {**config, "evaluate": config["evaluate"] | {"roc_weights": "physical"}}
    part = stage(physical, "evaluate", models={"m": model}, model="m")
    args = (str(tmp_path / "pred.h5"), str(out / "metrics.json"), str(tmp_path / "e.json"))
    metrics = evaluate(part, *args, str(tmp_path / "plots"))
    written = json.loads((tmp_path / "e.json").read_text())
    assert np.isfinite(numbers(written)).all()
    for entry in [written["inclusive"], *written["backgrounds"].values()]:
        assert np.isfinite(entry["auc"])
    assert metrics["weights"]["roc"].startswith("signed physics weights")
    assert metrics["weights"]["sb_scan"] == "signed physics weights"
    assert metrics["weights"]["negative"] > 0 and 0.5 < metrics["inclusive"]["auc"] <= 1


def with_a_nan_input(config: dict, root: Path, out: Path) -> tuple[dict, str]:
    """Splits (and norm) of the NLO sample whose 8th training jet has a NaN input value;
    the split paths and the variable."""
    outputs, _ = split_nlo(config, root, out)
    norm = stage(config, "norm")
    norm_stats(norm, outputs["train"], str(out / "norm.yaml"), str(out / "c.yaml"))
    variable = InputSpec.from_config(norm.inputs).variables["jets"][0]
    with h5py.File(outputs["train"], "r+") as h5:
        jets = h5["jets"][:10]
        jets[variable][7] = np.nan
        h5["jets"][:10] = jets
    return outputs, variable


def test_a_non_finite_input_stops_training_with_one_line(nlo: tuple, tmp_path: Path) -> None:
    """One NaN input value in the training split: one error line naming the model, epoch,
    batch and the variable; no best checkpoint, no work folder, no metrics left behind."""
    config, root = nlo
    outputs, variable = with_a_nan_input(config, root, tmp_path)
    out = tmp_path / "m"
    proc = hepsnake_train(
        config, small_model(config, 2), tmp_path, outputs["train"], outputs["val"], out
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    line = errors[0]
    assert line.startswith("hepsnake train: error: model 'm': non-finite loss (nan) at epoch 0,")
    assert f"likely cause: non-finite inputs jets.{variable} (1 jet);" in line
    assert re.search(r"; largest \|weight\| [0-9.]+ \(batch Σw [0-9.]+\), learning rate 0\.", line)
    assert not list(out.rglob("best*")) and not (out / ".work").exists()
    assert not (out / "metrics.json").exists()


def test_checks_read_in_groups_still_name_the_first_bad_batch(
    nlo: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read every 5 passes (as on a GPU, where each read waits for the device), the checks
    still blame the batch with the NaN, not a later one whose loss the NaN weights spoilt."""
    monkeypatch.setattr(FiniteLoss, "CPU_EVERY", 5)
    config, root = nlo
    outputs, variable = with_a_nan_input(config, root, tmp_path)
    part = train_contract(config, small_model(config, 1))
    paths = (outputs["train"], outputs["val"], str(tmp_path / "norm.yaml"))
    with pytest.raises(NonFiniteError, match=rf"non-finite inputs jets\.{variable} \(1 jet\)"):
        train(part, *paths, str(tmp_path / "c.yaml"), str(tmp_path / "m"))
    assert not (tmp_path / "m" / ".work").exists()
