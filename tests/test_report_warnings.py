"""Each of the report's warnings on crafted metrics, summaries and histories: it fires when its
condition holds and stays quiet otherwise (thresholds at the schema's defaults)."""

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, default_config, prepared_toy, train_contract

from hepsnake.config import SCHEMA, load_model, schema_validator
from hepsnake.errors import HepsnakeError
from hepsnake.report import warnings as review
from hepsnake.training.run import train

LIMITS: dict[str, Any] = {}
schema_validator(SCHEMA, "properties/report").validate(LIMITS)  # the defaults


def history(val: list[float], train: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    """A training metrics.json of ``len(val)`` epochs (best: the lowest validation loss)."""
    train = train or [1.0 / (e + 1) for e in range(len(val))]
    epochs = [
        {"epoch": e, "val_loss": v, "train_loss": t}
        for e, (v, t) in enumerate(zip(val, train, strict=True))
    ]
    best = min(range(len(val)), key=val.__getitem__)
    return {"epochs": epochs, "best_epoch": best, "monitor": "val_loss"} | extra


def converged(h: dict[str, Any]) -> list[review.Finding]:
    return review.not_converged("m", h, LIMITS["converged_tail"], LIMITS["still_falling_epochs"])


def test_thresholds_are_the_documented_defaults() -> None:
    assert LIMITS == {
        "best_by": "auc",
        "converged_tail": 0.1,
        "still_falling_epochs": 3,
        "overfitting_epochs": 3,
        "overfitting_rise": 0.02,
        "ks_p_value": 0.01,
        "int8_auc_delta": 0.005,
    }


def test_best_epoch_last_of_all_max_epochs_is_not_converged() -> None:
    """The default toy run: 8 of 8 epochs, the last the best."""
    val = [1.0, 0.9, 0.85, 0.84, 0.83, 0.835, 0.82, 0.81]
    (found,) = converged(history(val, max_epochs=8))
    assert found.code == "not_converged" and found.subject == "m"
    assert "its best epoch (7) is among the last 1 of its 8 epochs" in found.message
    assert "max_epochs" in found.advice


def test_still_falling_loss_is_not_converged_even_with_an_earlier_best() -> None:
    """A best epoch earlier than the tail but a loss falling over the last 3 epochs (a
    history without max_epochs: written before it was recorded)."""
    val = [1.0, 0.5, 0.9, 0.8, 0.7, 0.6, 0.55]
    (found,) = converged(history(val))
    assert found.message.startswith("the validation loss fell in each of the last 3 epochs")


def test_early_stopped_run_is_converged() -> None:
    """Early stopping ended it (6 of 50 epochs): even a best epoch near the end is fine, and
    the loss is not falling at the end."""
    val = [1.0, 0.8, 0.7, 0.72, 0.71, 0.73]
    assert converged(history(val, max_epochs=50)) == []
    # all 50 epochs used, the best (epoch 40) well before the last 5: converged too
    val = [1.0 - 0.01 * e for e in range(41)] + [0.6 + 0.001 * e for e in range(1, 10)]
    assert converged(history(val, max_epochs=50)) == []


@pytest.mark.parametrize(
    ("val", "fires"),
    [
        ([1.0, 0.8, 0.7, 0.72, 0.75, 0.79], True),  # +13% over 3 epochs
        ([1.0, 0.8, 0.7, 0.701, 0.702, 0.703], False),  # noise on a plateau: +0.4%
        ([1.0, 0.8, 0.7, 0.75, 0.8, 0.7], False),  # 2 epochs of rise only
    ],
)
def test_overfitting(val: list[float], fires: bool) -> None:
    found = review.overfitting("m", history(val), LIMITS["overfitting_epochs"], 0.02)
    assert bool(found) == fires
    if fires:
        assert found[0].message.startswith("from epoch 2 to 5 the validation loss rose by 12.9%")


def test_overfitting_needs_the_training_loss_to_fall() -> None:
    """Both losses rising: a diverging run, not overfitting."""
    val, train = [1.0, 0.8, 0.7, 0.75, 0.8, 0.9], [1.0, 0.8, 0.7, 0.75, 0.8, 0.9]
    assert review.overfitting("m", history(val, train), 3, 0.02) == []


def metrics(**over: Any) -> dict[str, Any]:
    """Evaluate metrics of a healthy model."""
    base = {
        "inclusive": {"auc": 0.9},
        "backgrounds": {"qcd": {"auc": 0.92}, "bib": {"auc": 0.88}},
        "training": {"best_epoch": 5, "epochs": 8, "gate_fallback": False},
        "constant_output": {"fraction": 0.01, "outputs": [0.2, 0.8]},
        "pt_bins": {"edges": [20, 50], "unit": "GeV", "fraction_inside": 0.9},
        "control_ks": {"sig": {"ks": 0.01, "p_value": 0.4}, "bib": {"ks": 0.02, "p_value": 0.2}},
    }
    return base | over


def test_a_healthy_model_raises_nothing() -> None:
    met = metrics()
    assert review.no_improvement("m", met) == []
    assert review.ks_gate("m", met) == []
    assert review.data_mc("m", met, 0.01) == []
    assert review.worse_than_random("m", met) == []
    assert review.constant_output("m", met, 0.1) == []
    assert review.pt_bins("m", met) == []


def test_data_mc_ks_below_the_p_value() -> None:
    """The issue's baseline: K-S 0.27 on the bib output, p = 2e-190."""
    met = metrics(
        control_ks={"sig": {"ks": 0.01, "p_value": 0.4}, "bib": {"ks": 0.27, "p_value": 2e-190}}
    )
    (found,) = review.data_mc("m", met, 0.01)
    assert "p_bib (K-S 0.27, p = 2e-190)" in found.message and "p_sig" not in found.message
    assert "train it with an adversary" in found.advice
    assert "raise adversarial.lambda" in review.data_mc("m", met, 0.01, adversarial=True)[0].advice
    assert review.data_mc("m", met, 1e-200) == []


def test_auc_below_one_half_names_each_roc() -> None:
    met = metrics(inclusive={"auc": 0.45}, backgrounds={"qcd": {"auc": 0.4}, "bib": {"auc": 0.6}})
    (found,) = review.worse_than_random("m", met)
    assert found.message == "AUC 0.4500 vs all backgrounds, 0.4000 vs qcd: worse than random"


def test_constant_output_pt_bins_best_epoch_zero_and_gate() -> None:
    met = metrics(
        constant_output={"fraction": 0.2, "outputs": [0.5, 0.5]},
        pt_bins={"edges": [20, 50], "unit": "MeV", "fraction_inside": 0.1},
        training={"best_epoch": 0, "epochs": 8, "gate_fallback": True},
    )
    assert review.constant_output("m", met, 0.1)[0].message.startswith("20.0% of the test jets")
    assert review.constant_output("m", met, 0.25) == []
    assert "set evaluate.pt_bins in MeV" in review.pt_bins("m", met)[0].advice
    assert review.no_improvement("m", met)[0].code == "no_improvement"
    assert review.ks_gate("m", met)[0].code == "ks_gate"


def test_export_checks() -> None:
    good = {"fp32": {"passed": True}, "int8": {"passed": True, "auc_delta": -0.001}}
    assert review.export_checks("m", good, 0.005) == []
    bad = {"fp32": {"passed": True}, "int8": {"passed": False, "auc_delta": -0.02}}
    found = review.export_checks("m", bad, 0.005)
    assert [f.message for f in found] == [
        "the int8 check of the ONNX export did not pass",
        "the int8 model's signal AUC differs from the fp32 model's by -0.0200 (more than 0.005)",
    ]


def test_negative_weights_name_the_samples_and_the_policy() -> None:
    samples = {"ttbar": {"fraction": 0.13, "abs_share": 0.081}, "wjets": {"fraction": 0.0}}
    (found,) = review.negative_weights(samples | {"zz": None}, "abs", 0)
    assert found.message == (
        "negative weights (sample ttbar: 13.0% of the jets, 8.1% of Σ|w|);"
        " training weights: prepare.negative_weights: abs (|w|)"
    )
    assert review.negative_weights({"wjets": {"fraction": 0.0}, "zz": None}, "abs", 0) == []
    (only_test,) = review.negative_weights({"zz": None}, None, 12)
    assert (
        "(12 test jets)" in only_test.message and "no prepare.negative_weights" in only_test.message
    )


def test_few_jets_per_class_and_split() -> None:
    rows = [
        {"split": s, "sample": "x", "class": c, "jets": n}
        for s, counts in {
            "train": {"a": 5000, "b": 80},
            "val": {"a": 500, "b": 150},
            "test": {"a": 500, "b": 10},
        }.items()
        for c, n in counts.items()
    ]
    found = review.few_jets({"kind": "main", "rows": rows}, ["a", "b"], 100)
    assert [f.message for f in found] == ["class b: 10 jets in the test split (fewer than 100)"]
    assert review.few_jets({"kind": "control", "rows": rows}, ["a", "b"], 100) == []


def test_conversion_and_dropped_jets() -> None:
    summary = {
        "sample": "s",
        "skipped": [{"path": "bad.root", "reason": "bad.root: truncated"}],
        "truncated_constituents": 7,
    }
    assert [f.code for f in review.conversion(summary)] == [
        "skipped_file",
        "truncated_constituents",
    ]
    assert review.conversion({"sample": "s", "skipped": [], "truncated_constituents": 0}) == []
    found = review.dropped_jets("split", {"nan": 3, "cuts": 0, "per_sample": {"s": {"x": 2}}})
    assert [f.message for f in found] == [
        "split: 3 jets dropped (nan)",
        "split, per_sample, s: 2 jets dropped (x)",
    ]


def test_stage_warnings_are_collected_and_checked() -> None:
    data = {"warnings": [{"code": "rare_class", "message": "class b: 3 jets", "advice": "more"}]}
    (found,) = review.stage_findings("dataset", data, "split.json")
    assert found == review.Finding("dataset", "rare_class", "class b: 3 jets", "more")
    assert review.stage_findings("m", {}, "m.json") == []
    with pytest.raises(HepsnakeError, match=r"^m\.json: warnings\[0\] is not a"):
        review.stage_findings("m", {"warnings": ["just text"]}, "m.json")
    own = review.Finding("dataset", "rare_class", "mine", "")
    other = review.Finding("m", "rare_class", "about m", "")
    assert review.without([own, other], [found]) == [other]


def test_headline_and_section() -> None:
    findings = [
        review.Finding("dataset", "few_jets", "class b: 3 jets in the test split", "more jets"),
        review.Finding("a", "not_converged", "best epoch last", "train longer"),
        review.Finding("b", "not_converged", "best epoch last", "train longer."),
    ]
    assert review.headline(findings) == (
        "**3 warnings**: few jets in a class (dataset); not converged (a, b)."
        " See [Warnings](#warnings)."
    )
    assert review.headline([]) == "0 warnings."
    assert review.section(findings) == [
        "## Warnings",
        "",
        "### Dataset",
        "",
        "- **few jets in a class**: class b: 3 jets in the test split. *What to do:* more jets.",
        "",
        "### Model `a`",
        "",
        "- **not converged**: best epoch last. *What to do:* train longer.",
        "",
        "### Model `b`",
        "",
        "- **not converged**: best epoch last. *What to do:* train longer.",
        "",
    ]
    assert review.section([]) == ["## Warnings", "", "- none", ""]


@pytest.fixture(scope="module")
def toy_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Small prepared toy splits (train/val/test, norm and class dicts) and their folder."""
    root = tmp_path_factory.mktemp("converge")
    base = default_config() | {"model_dir": str(REPO / "config" / "models")}
    config, _ = prepared_toy(root, {"qcd": 600, "bib": 300, "sig": 300}, 5, **base)
    return config, root


def trained_history(toy_splits: tuple, out: Path, **training: Any) -> dict[str, Any]:
    """The training metrics.json of a small baseline trained with ``training`` settings."""
    config, root = toy_splits
    model = load_model(config, "baseline")
    model["model"].update(dim=8, init_nets={"default": {"hidden": [8]}}, head={"hidden": [8]})
    model["training"].update(batch_size=100, **training)
    paths = [str(root / f) for f in ("train.h5", "val.h5", "norm.yaml", "class.yaml")]
    train(train_contract(config, model, "baseline"), *paths, str(out))
    return json.loads((out / "metrics.json").read_text())


def test_real_runs_early_stopped_and_cut_short(toy_splits, tmp_path) -> None:
    """A real training stopped by early stopping is not "not converged"; one cut at its
    max_epochs while its validation loss still falls is."""
    stopped = trained_history(
        toy_splits, tmp_path / "stopped", max_epochs=40, lr=0.05, early_stopping={"patience": 2}
    )
    assert stopped["max_epochs"] == 40 and len(stopped["epochs"]) < 40  # early stopping fired
    assert converged(stopped) == []
    short = trained_history(toy_splits, tmp_path / "short", max_epochs=3, early_stopping=None)
    assert short["max_epochs"] == 3 and len(short["epochs"]) == 3
    assert short["best_epoch"] == 2  # the toy's loss still falls after 3 epochs
    assert [f.code for f in converged(short)] == ["not_converged"]
