"""Metrics against sklearn on known inputs, predictions of parameterised models, the evaluate
stage's outputs, and the report's numbers against the metrics JSON."""

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO, TINY, checkpoint, prepared_toy, report_numbers_match, stage
from sklearn.metrics import roc_auc_score, roc_curve

from hepsnake.config import resolve, to_data, validate
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.metrics import (
    BAYES,
    auc,
    background_fractions,
    discriminant,
    model_metrics,
    rejection_at,
    roc_book,
    roc_sets,
    truth_logp,
)
from hepsnake.evaluate.predict import load_module, predict, task_fields, with_columns
from hepsnake.evaluate.stage import evaluate
from hepsnake.io.atomic import finite_or_none, write_json
from hepsnake.report.markdown import report

CLASSES = ["qcd", "sig", "bib"]
EVALUATE = {"signal": "sig", "working_points": [0.5, 0.7], "fractions": None, "pt_bins": None}
# a dense model trained at mS = 5, evaluated as "m"
MODEL_M = {
    "model": {},
    "parameters": {"names": ["mS"], "train": {"mS": [5.0]}, "test": {"mS": [5.0]}},
}


def evaluate_contract(**evaluate_keys):
    """The evaluate contract of model "m" in the shipped config with ``EVALUATE`` and
    ``evaluate_keys`` as its evaluate section."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config |= {
        "samples": str(REPO / "config" / "samples.tsv"),
        "model_dir": str(REPO / "config" / "models"),
        "evaluate": EVALUATE | evaluate_keys,
    }
    return stage(validate(config), "evaluate", models={"m": MODEL_M}, model="m")


def known_jets(
    n: int = 4000, seed: int = 0, own_mass: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random jets of known class probabilities: ``m_p{class}``, the toy truth fields, weights,
    pt, and signal masses 5 and 40. With ``own_mass``, also ``m_mS{own_mass}_p{class}``
    columns that separate everything perfectly (a parameterised model at that mass)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[label]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    fields = ["truth_logp_qcd", "truth_logp_sig", "truth_logp_bib", "weight", "pt", "mS"]
    jets = np.zeros(n, dtype=[("flavour_label", "i4")] + [(f, "f4") for f in fields])
    jets["flavour_label"] = label
    jets["mS"] = np.where(label == 1, rng.choice([5.0, 40.0], n), np.nan)
    jets["weight"] = rng.uniform(0.5, 1.5, n)
    jets["pt"] = rng.uniform(20, 200, n)
    for i, c in enumerate(CLASSES):
        jets[f"truth_logp_{c}"] = 2.0 * logits[:, i]
    columns = {f"m_p{c}": probs[:, i].astype(np.float32) for i, c in enumerate(CLASSES)}
    if own_mass is not None:
        perfect = np.where(np.eye(3)[label] > 0, 0.98, 0.01)
        for i, c in enumerate(CLASSES):
            columns[f"m_mS{own_mass:g}_p{c}"] = perfect[:, i].astype(np.float32)
    return with_columns(jets, columns), probs


def test_auc_and_rejection_match_sklearn() -> None:
    jets, probs = known_jets()
    book = roc_book(jets, "m", CLASSES, "sig", parameters=["mS"])
    metrics = model_metrics(jets, book, CLASSES, "sig", [0.5, 0.7], {"mS": [5.0]})
    sig5 = (jets["flavour_label"] == 1) & (jets["mS"] == 5.0)
    for b, name in ((0, "qcd"), (2, "bib")):
        is_b = jets["flavour_label"] == b
        score = np.log(probs[:, 1] + 1e-12) - np.log(probs[:, b] + 1e-12)
        truth = np.r_[np.ones(sig5.sum()), np.zeros(is_b.sum())]
        values = np.r_[score[sig5], score[is_b]]
        entry = metrics["backgrounds"][name]
        assert entry["auc"] == pytest.approx(roc_auc_score(truth, values), abs=1e-6)
        fpr, tpr, _ = roc_curve(truth, values)
        for wp in (0.5, 0.7):
            expected = 1 / np.interp(wp, tpr, fpr)
            assert entry["rejection"][f"{wp:g}"]["rejection"] == pytest.approx(expected, rel=1e-4)
        assert "bayes_auc" in entry
    scan = metrics["parameters"]["mS"]
    assert scan["40"]["unseen"] and not scan["5"]["unseen"]


def test_inclusive_roc_mixes_the_backgrounds_by_the_fractions() -> None:
    """Signal (training masses) vs qcd and bib weighted 0.7 : 0.3, on the fractions'
    discriminant: AUC as sklearn's weighted one, rejection as counted by hand."""
    jets, probs = known_jets(20000)
    fractions = {"qcd": 0.7, "bib": 0.3}
    book = roc_book(jets, "m", CLASSES, "sig", fractions, ["mS"])
    metrics = model_metrics(jets, book, CLASSES, "sig", [0.5], {"mS": [5.0]})
    sig = (jets["flavour_label"] == 1) & (jets["mS"] == 5.0)
    qcd, bib = jets["flavour_label"] == 0, jets["flavour_label"] == 2
    score = np.log(probs[:, 1]) - np.log(0.7 * probs[:, 0] + 0.3 * probs[:, 2])
    bkg = qcd | bib
    w = np.where(qcd, 0.7 / qcd.sum(), 0.3 / bib.sum())[bkg]
    truth = np.r_[np.ones(sig.sum()), np.zeros(bkg.sum())]
    expected = roc_auc_score(
        truth, np.r_[score[sig], score[bkg]], sample_weight=np.r_[np.ones(sig.sum()), w]
    )
    inclusive = metrics["inclusive"]
    assert inclusive["auc"] == pytest.approx(expected, abs=1e-6)
    cut = np.median(score[sig])
    eps_b = 0.7 * np.mean(score[qcd] > cut) + 0.3 * np.mean(score[bib] > cut)
    assert inclusive["rejection"]["0.5"]["rejection"] == pytest.approx(1 / eps_b, rel=0.02)
    assert "bayes_auc" in inclusive and "inclusive" in metrics["parameters"]["mS"]["40"]
    assert metrics["fractions"] == pytest.approx(fractions)


def test_background_fractions_are_checked() -> None:
    labels = np.array([0, 1, 2])
    assert background_fractions(labels, CLASSES, "sig", None) == {"qcd": 0.5, "bib": 0.5}
    assert background_fractions(labels, CLASSES, "sig", {"qcd": 3, "bib": 1})["qcd"] == 0.75
    with pytest.raises(HepsnakeError, match="no fraction for class 'bib'"):
        background_fractions(labels, CLASSES, "sig", {"qcd": 1})
    with pytest.raises(HepsnakeError, match="'sig' is not a background class"):
        background_fractions(labels, CLASSES, "sig", {"qcd": 1, "bib": 1, "sig": 1})


def test_perfect_and_random_scores() -> None:
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    rng = np.random.default_rng(1)
    assert abs(auc(rng.normal(size=20000), rng.normal(size=20000)) - 0.5) < 0.01
    rej = rejection_at(rng.normal(1, 1, 50000), rng.normal(0, 1, 50000), [0.5])["0.5"]
    # cut at the signal median (x = 1): background efficiency 1 - Φ(1) = 0.1587
    assert rej["rejection"] == pytest.approx(1 / 0.1587, rel=0.03)
    probs = {"sig": np.array([0.5]), "a": np.array([0.25]), "b": np.array([0.25])}
    assert discriminant(probs, "sig", {"a": 0.5, "b": 0.5})[0] == pytest.approx(np.log(2))


def test_write_json_writes_null_for_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json(path, {"a": float("inf"), "b": [float("nan"), 1.5], "c": (np.float64("-inf"),)})

    def reject(name: str) -> None:
        raise ValueError(name)

    assert json.loads(path.read_text(), parse_constant=reject) == {
        "a": None,
        "b": [None, 1.5],
        "c": [None],
    }


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, str, str]:
    """Prepared toy splits whose jets also carry a second parameter ``ctau`` (signal: 1), and
    a parameter-less copy of the test split standing in for the control region."""
    root = tmp_path_factory.mktemp("predict")
    jets = {"qcd": 300, "bib": 150, "sig": 300}
    config, outputs = prepared_toy(
        root, jets, 3, prepare={"fractions": {"train": 0.4, "val": 0.3, "test": 0.3}}
    )
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    test, control = root / "test_ctau.h5", root / "control.h5"
    with (
        h5py.File(outputs["test"], "r") as src,
        h5py.File(test, "w") as a,
        h5py.File(control, "w") as b,
    ):
        for name in src:
            if name != "jets":
                src.copy(name, a)
                src.copy(name, b)
        table = src["jets"][:]
        ctau = np.where(table["flavour_label"] == 1, 1.0, np.nan).astype(np.float32)
        a["jets"] = with_columns(table, {"ctau": ctau})
        names = [n for n in table.dtype.names if n != "mS"]
        b["jets"] = np.array(table[names].tolist(), dtype=[(n, table.dtype[n]) for n in names])
    return (config, root, outputs, norm), str(test), str(control)


def test_two_parameters_each_jet_at_its_own_and_control(toy: tuple, tmp_path: Path) -> None:
    """Every value of both parameters gets columns; the plain columns hold signal jets at their
    true values; the parameter-less control region is evaluated as background."""
    data, test, control = toy
    parameters = {
        "names": ["mS", "ctau"],
        "train": {"mS": [5, 16, 55], "ctau": [1, 10]},
        "test": {"mS": [5, 40], "ctau": [1, 10]},
    }
    ckpt = checkpoint(data, "two", TINY, parameters)
    out = tmp_path / "pred.h5"
    counts = predict("m", ckpt, test, str(out), control)
    with h5py.File(out, "r") as h5:
        jets, ctrl = h5["jets"][:], h5["control_jets"][:]
    assert counts == {"jets": len(jets), "control_jets": len(ctrl)}
    for tag in ("", "_mS5", "_mS40", "_ctau1", "_ctau10"):
        assert {f"m{tag}_p{c}" for c in CLASSES} <= set(jets.dtype.names), tag
    np.testing.assert_array_equal(jets["m_mS5_psig"], jets["m_ctau1_psig"])  # same point
    assert not np.allclose(jets["m_mS5_psig"], jets["m_mS40_psig"])
    sig = jets["flavour_label"] == 1
    module = load_module(ckpt)
    truth = {"mS": 16.0, "ctau": 1.0}
    at_truth = np.concatenate(
        task_fields(module, test, [module.model.classification], "m", truth)[0]["m_psig"]
    )
    np.testing.assert_allclose(jets["m_psig"][sig], at_truth[sig], rtol=1e-5)
    assert not np.allclose(jets["m_psig"][sig], jets["m_mS5_psig"][sig])
    assert np.isfinite(ctrl["m_psig"]).all() and "m_mS40_psig" in ctrl.dtype.names
    # the values each jet's plain columns saw: signal its own, background drawn from train
    np.testing.assert_array_equal(jets["m_mS"][sig], 16.0)
    assert set(np.unique(jets["m_mS"][~sig])) <= {5.0, 16.0, 55.0}
    assert set(np.unique(ctrl["m_ctau"])) == {1.0, 10.0}


def test_bayes_reference_follows_the_mass_each_jet_was_scored_at() -> None:
    """A parameterised model's plain columns saw each jet at ``m_mS``: the Bayes-optimal
    reference takes the signal likelihood at that mass, jet by jet, not the mixture."""
    base, _ = known_jets(own_mass=5.0)
    rng = np.random.default_rng(1)
    at5, at40 = rng.normal(0, 1, len(base)), rng.normal(0, 1, len(base))
    seen = np.where(base["flavour_label"] == 1, base["mS"], rng.choice([5.0, 40.0], len(base)))
    truths = {"truth_logp_sig_mS5": at5, "truth_logp_sig_mS40": at40}
    jets = with_columns(base, truths | {"m_mS": seen})
    expected = np.where(seen == 5.0, at5, at40).astype(np.float32)
    truth = truth_logp(jets, CLASSES, "sig", "mS", jets["m_mS"].astype(np.float64))
    np.testing.assert_array_equal(truth["sig"], expected)
    fractions = {"qcd": 0.5, "bib": 0.5}
    bayes = roc_sets(jets, "m", CLASSES, "sig", fractions, parameters=["mS"])[BAYES]["qcd"][0]
    np.testing.assert_allclose(bayes, expected - jets["truth_logp_qcd"], rtol=1e-6)
    mixture = roc_sets(with_columns(base, truths), "m", CLASSES, "sig", fractions, None, ["mS"])
    mixture = mixture[BAYES]
    np.testing.assert_array_equal(
        mixture["qcd"][0], base["truth_logp_sig"].astype(np.float64) - base["truth_logp_qcd"]
    )


def write_predictions(path: Path, jets: np.ndarray, control: np.ndarray | None = None) -> None:
    """A predictions file as rule predict writes it."""
    with h5py.File(path, "w") as h5:
        h5["jets"] = jets
        h5["jets"].attrs["class_names"] = CLASSES
        if control is not None:
            h5["control_jets"] = control


def control_jets(n: int = 2000, seed: int = 3) -> np.ndarray:
    """Control-region jets, data and MC alike (random outputs)."""
    rng = np.random.default_rng(seed)
    dtype = [("is_data", "?"), ("weight", "f4"), ("train_weight", "f4")]
    dtype += [(f"m_p{c}", "f4") for c in CLASSES]
    table = np.zeros(n, dtype=dtype)
    table["is_data"] = rng.random(n) < 0.5
    table["weight"] = table["train_weight"] = 1.0
    for c in CLASSES:
        table[f"m_p{c}"] = rng.random(n)
    return table


def history(path: Path) -> None:
    """A training metrics.json of two epochs, one value NaN (written as null)."""
    epochs = [
        {"epoch": 0, "train_loss": 1.0, "val_loss": float("nan"), "val_acc": 0.5},
        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_acc": 0.6},
    ]
    write_json(
        path, {"epochs": epochs, "best_epoch": 1, "monitor": "val_loss", "train_seconds": 1.0}
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, dict]:
    """The evaluate stage on known jets of a 'parameterised' model (perfect at mS = 5)."""
    root = tmp_path_factory.mktemp("evaluate")
    jets, _ = known_jets(6000, own_mass=5.0)
    write_predictions(root / "pred.h5", jets, control_jets())
    history(root / "training.json")
    c = evaluate_contract(pt_bins=[20, 100, 200], fractions={"qcd": 2, "bib": 1})
    metrics = evaluate(
        c,
        str(root / "pred.h5"),
        str(root / "training.json"),
        str(root / "m.json"),
        str(root / "plots"),
    )
    return root, jets, metrics


def test_evaluate_writes_every_plot_and_metric(evaluated: tuple) -> None:
    root, _, metrics = evaluated
    for name in (
        "roc",
        "roc_param",
        "outputs",
        "outputs_pt",
        "sb_scan",
        "control",
        "param_efficiency",
        "training",
    ):
        assert (root / "plots" / f"{name}.png").stat().st_size > 0, name
    assert json.loads((root / "m.json").read_text()) == finite_or_none(metrics)
    assert metrics["fractions"] == pytest.approx({"qcd": 2 / 3, "bib": 1 / 3})
    assert len(metrics["pt_bins"]["inclusive_auc"]) == 2
    assert set(metrics["control_ks"]) == set(CLASSES)


def test_parameter_efficiency_uses_each_value_own_columns(evaluated: tuple) -> None:
    """mS = 5 has perfect own columns (efficiency 1); mS = 40 uses the plain columns: the
    share of its signal above the inclusive working-point cut."""
    _, jets, metrics = evaluated
    eff = metrics["parameter_efficiency"]
    efficiency = eff["efficiency"]["mS"]
    assert eff["working_point"] == 0.7 and efficiency["5"] == pytest.approx(1.0)
    score = np.log(jets["m_psig"] + 1e-12) - np.log(
        2 / 3 * jets["m_pqcd"] + 1 / 3 * jets["m_pbib"] + 1e-12
    )
    sig = jets["flavour_label"] == 1
    cut = np.quantile(score[sig & (jets["mS"] == 5)], 0.3)
    expected = np.mean(score[sig & (jets["mS"] == 40)] > cut)
    assert efficiency["40"] == pytest.approx(expected, abs=0.02)
    assert metrics["parameters"]["mS"]["5"]["inclusive"]["auc"] == pytest.approx(1.0)


def test_report_numbers_hash_and_null_rejections(
    evaluated: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report repeats the metrics (a perfectly separated background's rejection is null
    in the JSON and '-' in the report), every image exists, and the config hash is the
    whole config's: it changes with a training override the report slice does not hold."""
    _, jets, _ = evaluated
    separated = jets.copy()
    bib = separated["flavour_label"] == 2
    separated["m_psig"] = np.where(bib, 1e-6, np.maximum(separated["m_psig"], 0.05))
    separated["m_pbib"] = np.where(bib, 0.9, separated["m_pbib"])
    results = tmp_path / "results"
    (results / "plots" / "m").mkdir(parents=True)
    write_predictions(results / "pred.h5", separated, control_jets())
    history(tmp_path / "training.json")
    evaluate(
        evaluate_contract(),
        str(results / "pred.h5"),
        str(tmp_path / "training.json"),
        str(tmp_path / "m.json"),
        str(results / "plots" / "m"),
    )
    metrics = {"m": json.loads((tmp_path / "m.json").read_text())}
    assert metrics["m"]["backgrounds"]["bib"]["rejection"]["0.5"]["rejection"] is None
    (tmp_path / "split.json").write_text('{"rows": []}')
    (tmp_path / "conv.json").write_text('{"sample": "s", "files": [], "skipped": []}')

    (results / "plots" / "prepare").mkdir()
    (results / "plots" / "prepare" / "reweighting.png").write_bytes(b"png")
    monkeypatch.chdir(REPO)
    full = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    full = validate(full | {"evaluate": EVALUATE})
    text = report(
        stage(full, "report"),
        {"m": str(tmp_path / "m.json")},
        {"m": str(tmp_path / "training.json")},
        str(tmp_path / "split.json"),
        [str(tmp_path / "conv.json")],
        str(results / "report.md"),
    )
    for link in report_numbers_match(text, metrics):
        assert (results / link).is_file(), link
    assert "| bib | 0.5 | - | - |" in text
    assert f"| config hash (sha256) | {resolve(full).config_hash} |" in text
    changed = validate(full | {"training_overrides": {"max_epochs": 3}})
    assert resolve(changed).config_hash != resolve(full).config_hash
    assert stage(changed, "report").config_hash == resolve(changed).config_hash


def test_evaluate_slices_read_the_model_and_samples_not_simulate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parameterised model's scan comes from its ``parameters``; another model's from the
    signal samples' params (training values: the ``role: train`` samples, not mS 40);
    ``simulate`` is in neither the evaluate nor the report slice."""
    monkeypatch.chdir(REPO)
    full = validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    par = stage(full, "evaluate", model="parameterised")
    base = stage(full, "evaluate", model="baseline")
    assert to_data(par.parameters) == {"names": ["mS"], "train": {"mS": [5.0, 16.0, 55.0]}}
    assert to_data(base.parameters) == {"names": ["mS"], "train": {"mS": [5.0, 16.0, 55.0]}}
    report_contract = stage(full, "report")
    assert set(report_contract.parameters) == set(full["models"])
    for part in (par, base, report_contract):
        assert "simulate" not in json.dumps(to_data(part))
    full["simulate"]["masses"]["train"] = [1.0]
    assert stage(full, "evaluate", model="baseline") == base


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ratio_reference", "GN2", "evaluate/ratio_reference: 'GN2' is neither a reference tagger"),
        ("signal", "sigg", "evaluate/signal: 'sigg' is not one of class_names"),
        ("fractions", {"nope": 1.0}, "evaluate/fractions/nope: 'nope' is not one of class_names"),
        (
            "reference_taggers",
            {"r": {"probabilities": {"nope": "x"}}},
            "evaluate/reference_taggers/r/probabilities/nope: 'nope' is not one of",
        ),
    ],
)
def test_evaluate_names_are_checked_when_the_config_is(monkeypatch, key, value, message):
    """A class or tagger name of ``evaluate`` that does not exist stops the config, not the
    evaluate job after training."""
    monkeypatch.chdir(REPO)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["evaluate"][key] = value
    with pytest.raises(HepsnakeError, match=re.escape(message)):
        validate(config)
