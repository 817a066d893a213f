"""Evaluation and report for a flavour tagger: D_b with f_c against a by-hand computation,
reference taggers beside the model, S/√B only on physical weights, every warning kind, and no
toy wording, on small synthetic predictions and metrics files."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import h5py
import matplotlib
import numpy as np
import pytest
from conftest import section, stage
from sklearn.metrics import roc_auc_score

from hepsnake.config import validate
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import (
    FTAG_WORKING_POINTS,
    INCLUSIVE,
    discriminant_setup,
    model_metrics,
    roc_book,
    working_points,
)
from hepsnake.evaluate.stage import evaluate
from hepsnake.io.atomic import write_json
from hepsnake.io.figure import use_style
from hepsnake.names import prob_column
from hepsnake.report.markdown import report

FLAVOURS = ["ujets", "cjets", "bjets"]
GN2 = {"probabilities": {"bjets": "GN2v01_pb", "cjets": "GN2v01_pc", "ujets": "GN2v01_pu"}}
REFERENCES = {"GN2v01": GN2, "DeepFlavB": {"score": "btagDeepFlavB"}}
EVALUATE = {
    "signal": "bjets",
    "signal_label": "b-jets",
    "working_points": None,
    "discriminant": {"type": "flavour", "fc": 0.1},
    "fractions": None,
    "pt_bins": [20_000, 60_000, 200_000],
    "reference_taggers": REFERENCES,
    "ratio_reference": "GN2v01",
    "physical_weights": None,
    "min_class_jets": 100,
    "constant_fraction": 0.1,
}


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def flavour_jets(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Light, c and b jets (pt in MeV) with the model ``m``'s outputs, GN2v01's (sharper) and a
    DeepFlavB-like score; a few jets have no DeepFlavB score (NaN)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    truth = np.eye(3)[label]
    fields = ["weight", "pt", "GN2v01_pu", "GN2v01_pc", "GN2v01_pb", "btagDeepFlavB"]
    fields += [prob_column("m", c) for c in FLAVOURS]
    jets = np.zeros(n, dtype=[("flavour_label", "i4")] + [(f, "f4") for f in fields])
    jets["flavour_label"] = label
    jets["weight"] = rng.uniform(0.5, 1.5, n)
    jets["pt"] = rng.uniform(20_000, 200_000, n)
    model = softmax(rng.normal(0, 1, (n, 3)) + 1.0 * truth)
    gn2 = softmax(rng.normal(0, 1, (n, 3)) + 2.0 * truth)
    for i, c in enumerate(FLAVOURS):
        jets[prob_column("m", c)] = model[:, i]
    for i, x in enumerate(("pu", "pc", "pb")):
        jets[f"GN2v01_{x}"] = gn2[:, i]
    jets["btagDeepFlavB"] = rng.normal(0, 1, n) + 1.5 * (label == 2)
    jets["btagDeepFlavB"][:20] = np.nan
    return jets


def write_predictions(path: Path, jets: np.ndarray, unit: str | None = "MeV") -> None:
    """A predictions file as rule predict writes it (the jets' energy unit in attrs)."""
    with h5py.File(path, "w") as h5:
        h5["jets"] = jets
        h5["jets"].attrs["class_names"] = FLAVOURS
        if unit:
            h5["jets"].attrs["energy_unit"] = unit


def history(path: Path, best_epoch: int = 2) -> None:
    """A training metrics.json of a converged run: early stopping ended it after epoch 5 of
    up to 20, its validation loss lowest at ``best_epoch``."""
    epochs = [
        {
            "epoch": e,
            "train_loss": 1.0 / (e + 1),
            "val_loss": 1.0 + 0.001 * abs(e - best_epoch),
            "val_acc": 0.5,
        }
        for e in range(6)
    ]
    summary = {"epochs": epochs, "best_epoch": best_epoch, "monitor": "val_loss"}
    write_json(path, summary | {"max_epochs": 20, "train_seconds": 1})


def run_evaluate(
    root: Path, jets: np.ndarray, evaluate_cfg: dict[str, Any] | None = None, best_epoch: int = 2
) -> dict[str, Any]:
    """The evaluate stage of model ``m`` on ``jets`` under ``root`` (plots in plots/m)."""
    write_predictions(root / "pred.h5", jets)
    history(root / "training.json", best_epoch)
    config = flavour_config(evaluate_cfg)
    (root / "plots" / "m").mkdir(parents=True, exist_ok=True)
    return evaluate(
        stage(config, "evaluate", models={"m": {"model": {}}}, model="m"),
        str(root / "pred.h5"),
        str(root / "training.json"),
        str(root / "m.json"),
        str(root / "plots" / "m"),
    )


def flavour_config(
    evaluate_cfg: dict[str, Any] | None = None,
    classes: list[str] = FLAVOURS,
    report: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A validated config of ``classes`` (one PHYSLITE sample) with ``evaluate_cfg`` (default
    ``EVALUATE``) as its evaluate section and ``report`` as its report section."""
    return validate(
        {
            "class_names": list(classes),
            "samples": [{"name": "s", "files": ["s.root"], "reader": "r"}],
            "readers": {"r": {"type": "physlite"}},
            "convert": {},
            "inputs": {"variables": {"jets": ["pt"]}},
            "evaluate": copy.deepcopy(evaluate_cfg or EVALUATE),
            "report": dict(report or {}),
        }
    )


def evaluate_spec(evaluate_cfg: dict[str, Any] | None = None, classes: list[str] = FLAVOURS):
    """The typed evaluate section of :func:`flavour_config`."""
    return stage(flavour_config(evaluate_cfg, classes), "report").evaluate


def d_b(pb: np.ndarray, pc: np.ndarray, pu: np.ndarray, fc: float) -> np.ndarray:
    """FTAG's D_b by hand."""
    return np.log(pb / (fc * pc + (1 - fc) * pu))


def test_flavour_discriminant_with_fc_matches_a_by_hand_computation() -> None:
    """D_b = log(p_b / (f_c p_c + (1 − f_c) p_u)) scores every ROC; c rejection at 70% is
    1 / (share of c jets above the cut that keeps 70% of b jets)."""
    jets = flavour_jets(20000)
    setup = discriminant_setup(evaluate_spec(), FLAVOURS)
    assert setup.kind == "flavour" and setup.fractions == pytest.approx(
        {"ujets": 0.9, "cjets": 0.1}
    )
    assert working_points(evaluate_spec(), setup) == FTAG_WORKING_POINTS
    book = roc_book(jets, "m", FLAVOURS, "bjets", setup.fractions, shared=setup.shared)
    p = {c: jets[prob_column("m", c)].astype(np.float64) for c in FLAVOURS}
    expected = d_b(p["bjets"], p["cjets"], p["ujets"], 0.1)
    for roc in (INCLUSIVE, "cjets", "ujets"):
        np.testing.assert_allclose(book.inclusive["m"][roc][0], expected, rtol=1e-6, atol=1e-6)
    metrics = model_metrics(jets, book, FLAVOURS, "bjets", [0.7])
    b, c = jets["flavour_label"] == 2, jets["flavour_label"] == 1
    cut = np.quantile(expected[b], 0.3)
    rejection = metrics["backgrounds"]["cjets"]["rejection"]["0.7"]["rejection"]
    assert rejection == pytest.approx(1 / np.mean(expected[c] > cut), rel=0.02)
    truth = np.r_[np.ones(b.sum()), np.zeros(c.sum())]
    auc_c = roc_auc_score(truth, np.r_[expected[b], expected[c]])
    assert metrics["backgrounds"]["cjets"]["auc"] == pytest.approx(auc_c, abs=1e-6)


def test_discriminant_auto_detects_flavours_and_rejects_other_classes() -> None:
    auto = {"signal": "b", "discriminant": {"type": "auto"}}
    flavours = ["light", "c", "b"]
    assert discriminant_setup(evaluate_spec(auto, flavours), flavours).kind == "flavour"
    toy = ["qcd", "sig", "bib"]
    assert discriminant_setup(evaluate_spec({"signal": "sig"}, toy), toy).kind == "fractions"
    with_fractions = evaluate_spec(auto | {"fractions": {"c": 1, "light": 1}}, flavours)
    assert discriminant_setup(with_fractions, flavours).kind == "fractions"
    hbb = [*FLAVOURS, "hbb"]
    with pytest.raises(HepsnakeError, match="class 'hbb' is not a c, tau or light flavour"):
        discriminant_setup(evaluate_spec(EVALUATE, hbb), hbb)


@pytest.fixture(scope="module")
def flavour_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, dict]:
    """The evaluate stage on flavour jets with GN2v01 and DeepFlavB as reference taggers."""
    root = tmp_path_factory.mktemp("flavour")
    jets = flavour_jets()
    figures: list[Any] = []
    saved = plots.save_figure

    def keep(fig: Any, output: Any, dpi: int = 90) -> None:
        figures.append((Path(output).name, [ax for ax in fig.axes]))
        saved(fig, output, dpi)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "save_figure", keep)
        metrics = run_evaluate(root, jets)
    return root, jets, metrics | {"_figures": figures}


def test_reference_taggers_in_the_metrics_and_the_roc_plot(flavour_run: tuple) -> None:
    """GN2v01's D_b and DeepFlavB's score get AUCs (as sklearn's on the same jets) and
    rejections; the ROC plot draws them with a ratio panel to GN2v01 under each panel."""
    root, jets, metrics = flavour_run
    refs = metrics["reference_taggers"]
    b, u = jets["flavour_label"] == 2, jets["flavour_label"] == 0
    gn2 = d_b(jets["GN2v01_pb"], jets["GN2v01_pc"], jets["GN2v01_pu"], 0.1).astype(np.float64)
    truth = np.r_[np.ones(b.sum()), np.zeros(u.sum())]
    expected = roc_auc_score(truth, np.r_[gn2[b], gn2[u]])
    assert refs["GN2v01"]["backgrounds"]["ujets"]["auc"] == pytest.approx(expected, abs=1e-4)
    score = jets["btagDeepFlavB"].astype(np.float64)
    score = np.where(np.isfinite(score), score, np.nanmin(score) - 1)
    expected = roc_auc_score(truth, np.r_[score[b], score[u]])
    assert refs["DeepFlavB"]["backgrounds"]["ujets"]["auc"] == pytest.approx(expected, abs=1e-6)
    assert set(refs["GN2v01"][INCLUSIVE]["rejection"]) == {"0.6", "0.7", "0.77", "0.85"}
    assert refs["GN2v01"][INCLUSIVE]["auc"] > metrics[INCLUSIVE]["auc"]  # the sharper tagger
    axes = dict(metrics["_figures"])["roc.png"]
    assert len(axes) == 6  # 3 ROC panels (inclusive, c, light) over 3 ratio panels
    labels = {t.get_text() for ax in axes[:3] for t in ax.get_legend().get_texts()}
    assert labels == {"m", "GN2v01", "DeepFlavB"}
    assert {ax.get_ylabel() for ax in axes[3:]} == {"ratio to GN2v01"}
    ratio = next(line for line in axes[3].get_lines() if np.allclose(line.get_ydata(), 1))
    assert ratio is not None  # the reference over itself
    assert (root / "plots" / "m" / "roc.png").stat().st_size > 0
    assert metrics["pt_bins"]["unit"] == "MeV" and metrics["energy_unit"] == "MeV"
    # the curves the report's comparison plot draws, stored in the metrics (not recomputed)
    stored = metrics["roc_curves"]
    assert stored["rocs"] == [INCLUSIVE, "ujets", "cjets"]
    assert set(stored["rejection"]) == {"m", "GN2v01", "DeepFlavB"}
    at = stored["efficiency"].index(pytest.approx(0.7))
    for tagger, entry in [("m", metrics), ("GN2v01", refs["GN2v01"])]:
        expected = entry[INCLUSIVE]["rejection"]["0.7"]["rejection"]
        assert stored["rejection"][tagger][INCLUSIVE][at] == pytest.approx(expected, rel=0.05)


def test_a_missing_reference_field_names_the_tagger(tmp_path: Path) -> None:
    jets = flavour_jets(500)
    bad = EVALUATE | {
        "reference_taggers": {"CSVv2": {"score": "btagCSVV2"}},
        "ratio_reference": None,
    }
    with pytest.raises(HepsnakeError, match=r"reference_taggers/CSVv2.*no jet field 'btagCSVV2'"):
        run_evaluate(tmp_path, jets, bad)


@pytest.mark.parametrize(
    ("weights", "setting", "physical"),
    [
        ("negative", None, True),  # yields are signed sums
        ("ones", None, False),
        ("negative", True, True),
        ("uniform", False, False),
    ],
)
def test_sb_scan_only_on_physical_weights(
    tmp_path: Path, weights: str, setting: bool | None, physical: bool
) -> None:
    jets = flavour_jets(1000)
    if weights == "negative":
        jets["weight"][::10] *= -1
    elif weights == "ones":
        jets["weight"] = 1.0
    metrics = run_evaluate(tmp_path, jets, EVALUATE | {"physical_weights": setting})
    assert ("sb_scan" in metrics) == physical
    assert metrics["weights"]["physical"] == physical
    assert metrics["weights"]["negative"] == (100 if weights == "negative" else 0)
    assert (tmp_path / "plots" / "m" / "sb_scan.png").exists() == (setting is not False)
    if physical:
        assert metrics["weights"]["sb_scan"] == "signed physics weights"
        assert np.isfinite(metrics["sb_scan"]["max_significance"])


def split_summary(path: Path, counts: dict[str, int], dropped: dict | None = None) -> None:
    """A split summary with ``counts`` jets of each class in each split."""
    rows = [
        {
            "split": s,
            "sample": "ttbar",
            "class": c,
            "jets": n,
            "sum_weight": n,
            "sum_train_weight": n,
        }
        for s in ("train", "val", "test")
        for c, n in counts.items()
    ]
    path.write_text(
        json.dumps({"kind": "main", "rows": rows} | ({"dropped": dropped} if dropped else {}))
    )


def convert_summary(path: Path, dropped: dict | None = None) -> None:
    summary = {
        "sample": "ttbar",
        "files": [{"path": "ttbar.root", "jets_written": 3000}],
        "skipped": [],
    }
    path.write_text(json.dumps(summary | ({"dropped": dropped} if dropped else {})))


def make_report(
    root: Path,
    jets: np.ndarray | None = None,
    best_epoch: int = 2,
    counts: dict[str, int] | None = None,
    convert_dropped: dict | None = None,
    split_dropped: dict | None = None,
) -> str:
    """Evaluate model ``m`` and write the report of that one model under ``root/results``."""
    results = root / "results"
    (results / "plots" / "prepare").mkdir(parents=True)
    (results / "plots" / "prepare" / "reweighting.png").write_bytes(b"png")
    run_evaluate(results, flavour_jets() if jets is None else jets, best_epoch=best_epoch)
    split_summary(root / "split.json", counts or dict.fromkeys(FLAVOURS, 1000), split_dropped)
    convert_summary(root / "conv.json", convert_dropped)
    return write_report(root)


def write_report(root: Path, **report_limits: float) -> str:
    """The report of model ``m`` from the files :func:`make_report` wrote under ``root``
    (``report_limits``: the config's ``report`` thresholds, the schema's defaults else)."""
    results = root / "results"
    return report(
        stage(flavour_config(report=report_limits), "report"),
        {"m": str(results / "m.json")},
        {"m": str(results / "training.json")},
        str(root / "split.json"),
        [str(root / "conv.json")],
        str(results / "report.md"),
    )


def warnings_of(text: str) -> list[str]:
    """The warning lines of the Warnings section (or its "- none")."""
    return [line for line in section(text, "## Warnings") if line.startswith("- ")]


def test_flavour_report_says_what_the_run_is_without_toy_wording(tmp_path: Path) -> None:
    """Classes, signal wording, D_b, reference taggers, MeV; no 'sig', no 'mass'; the
    references' rows and rejections in the comparison; 'Warnings: none' on a clean run."""
    text = make_report(tmp_path)
    assert re.search(r"\bsig\b", text) is None and "mass" not in text.lower()
    assert "| classes | ujets, cjets, bjets |" in text
    assert "| discriminant | flavour: log(p_bjets / (0.9 p_ujets + 0.1 p_cjets)) |" in text
    assert "| reference taggers | GN2v01, DeepFlavB |" in text
    assert "| energy unit | MeV |" in text
    header = "| jet pt [MeV] | AUC b-jets vs all backgrounds | b-jets efficiency | cjets rejection"
    assert header in text and "![m efficiency_pt](plots/m/efficiency_pt.png)" in text
    assert "AUC b-jets vs all backgrounds" in text
    assert re.search(r"^\| GN2v01 \(reference\) \| - \| 0\.\d{4} ", text, re.M)
    assert re.search(r"^\| DeepFlavB \(reference\) \| ujets \| \d+\.\d{4} \| ", text, re.M)
    assert "| tagger | background | ε = 0.6 | ε = 0.7 | ε = 0.77 | ε = 0.85 |" in text
    assert "Bayes AUC" not in text and "K-S" not in text  # no toy truth, no control region
    assert "| tagger | background | ε = 0.6 | ε = 0.7 | ε = 0.77 | ε = 0.85 |" in text
    assert "Maximum S/√B" in text
    assert warnings_of(text) == ["- none"]
    assert text.splitlines()[2] == "0 warnings."


def test_each_warning_kind_appears_when_its_condition_holds(tmp_path: Path) -> None:
    jets = flavour_jets()
    jets["m_pb"], jets["m_pu"] = (
        jets["m_pu"].copy(),
        jets["m_pb"].copy(),
    )  # AUC < 0.5
    same = slice(0, len(jets) // 5)  # 20% of the jets get one output
    for c, v in zip(FLAVOURS, (0.5, 0.3, 0.2), strict=True):
        jets[prob_column("m", c)][same] = v
    jets["weight"][::50] *= -1
    jets["pt"] /= 1000  # GeV values in a file that says MeV: the bins miss them
    text = make_report(
        tmp_path,
        jets,
        best_epoch=0,
        counts={"ujets": 1000, "cjets": 12, "bjets": 1000},
        convert_dropped={"label_map": 32, "cuts": 0},
        split_dropped={"nan": 5},
    )
    warnings = "\n".join(warnings_of(text))
    expected = [
        "- **jets dropped**: sample ttbar: 32 jets dropped (label_map).",
        "- **jets dropped**: split: 5 jets dropped (nan).",
        "- **few jets in a class**: class cjets: 12 jets in the val split (fewer than 100).",
        "- **few jets in a class**: class cjets: 12 jets in the test split (fewer than 100).",
        "- **no improvement after epoch 0**: its best epoch is 0",
        # the validated config always names a policy (the schema's default: abs)
        "- **negative weights**: negative weights (60 test jets); training weights:"
        " prepare.negative_weights: abs (|w|)",
        "- **constant output**: 20.0% of the test jets get one identical output (0.5, 0.3, 0.2).",
        "- **pt bins miss the jets**: the pt bins [20000, 60000, 200000] MeV hold only 0% of",
    ]
    for line in expected:
        assert line in warnings, (line, warnings)
    below = r"- \*\*AUC below 0\.5\*\*: AUC 0\.\d+ vs all backgrounds, 0\.\d+ vs cjets, 0\.\d+ vs"
    assert re.search(below, warnings), warnings
    assert "dropped (cuts)" not in warnings  # a reason that dropped nothing
    assert warnings.count("*What to do:*") == len(warnings_of(text))  # each says what to do
    assert "Maximum S/√B" in text  # signed yields: negative weights do not omit it
    top = text.splitlines()[2]
    assert top.startswith(f"**{len(warnings_of(text))} warnings**: jets dropped (dataset); ")
    assert "; no improvement after epoch 0 (m);" in top


def test_plot_style_draws_the_experiment_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With evaluate.plot_style each ROC panel carries "ATLAS Simulation Internal" and the
    run text, and the panel title moves into the legend."""
    texts: dict[str, list[str]] = {}
    saved = plots.save_figure

    def keep(fig: Any, output: Any, dpi: int = 90) -> None:
        texts[Path(output).name] = [fig.get_suptitle()] + [
            t.get_text() for ax in fig.axes for t in ax.texts
        ]
        saved(fig, output, dpi)

    monkeypatch.setattr(plots, "save_figure", keep)
    style = {"experiment": "ATLAS", "label": "Internal", "text": "tt̄ jets"}
    try:
        run_evaluate(tmp_path, flavour_jets(1000), EVALUATE | {"plot_style": style})
    finally:
        use_style(None)
        matplotlib.rcdefaults()
    roc = texts["roc.png"]
    assert roc.count("ATLAS") == 3 and roc.count("tt̄ jets") == 3
    assert any("Simulation Internal" in t for t in roc)
    assert roc[0] == "signal: b-jets; log(p_bjets / (0.9 p_ujets + 0.1 p_cjets))"


def test_efficiency_and_rejection_per_pt_bin_at_one_cut(flavour_run: tuple) -> None:
    """At the cut keeping 77% of all b jets (FTAG's middle working point), each MeV pt bin's
    b efficiency and light rejection, counted by hand."""
    root, jets, metrics = flavour_run
    per_bin = metrics["pt_bins"]["at_working_point"]
    p = {c: jets[prob_column("m", c)].astype(np.float64) for c in FLAVOURS}
    score = d_b(p["bjets"], p["cjets"], p["ujets"], 0.1)
    b, u = jets["flavour_label"] == 2, jets["flavour_label"] == 0
    cut = np.quantile(score[b], 1 - 0.77)
    assert per_bin["working_point"] == 0.77 and per_bin["cut"] == pytest.approx(cut, abs=1e-4)
    for i, (lo, hi) in enumerate([(20_000, 60_000), (60_000, 200_000)]):
        sel = (jets["pt"] >= lo) & (jets["pt"] < hi)
        eff = np.mean(score[b & sel] > cut)
        assert per_bin["signal"][i]["efficiency"] == pytest.approx(eff, abs=2e-3)
        rej = 1 / np.mean(score[u & sel] > cut)
        assert per_bin["rejection"]["ujets"][i]["rejection"] == pytest.approx(rej, rel=1e-2)
    assert (root / "plots" / "m" / "efficiency_pt.png").stat().st_size > 0


def edit_json(path: Path, **keys: Any) -> None:
    """Set ``keys`` in the JSON file ``path``."""
    path.write_text(json.dumps(json.loads(path.read_text()) | keys))


def test_stage_warnings_and_negative_weights_reach_the_report(tmp_path: Path) -> None:
    """The ``warnings`` of every file the report reads are listed under their subject, a
    report check a stage already made is not repeated, the samples table gives each
    sample's negative-weight shares (n/a without them), and the report's own thresholds come
    from the config's report section."""
    make_report(tmp_path)
    results = tmp_path / "results"

    def said(code: str, where: str) -> dict[str, str]:
        return {"code": code, "message": f"{code} in {where}", "advice": f"fix {where}"}

    edit_json(
        tmp_path / "conv.json",
        warnings=[said("odd_branch", "conversion"), said("negative_weights", "conversion")],
        negative_weights={"fraction": 0.13, "abs_share": 0.081},
    )
    edit_json(tmp_path / "split.json", warnings=[said("negative_weights", "split")])
    edit_json(results / "training.json", warnings=[said("nan_batch", "training")])
    edit_json(results / "m.json", warnings=[said("tiny_test", "evaluation")])
    text = write_report(tmp_path)
    lines = section(text, "## Warnings")
    assert lines.index("### Dataset") < lines.index("### Model `m`")
    dataset = lines[lines.index("### Dataset") : lines.index("### Model `m`")]
    model = lines[lines.index("### Model `m`") :]
    for code, where, part in [
        ("odd_branch", "conversion", dataset),
        ("negative_weights", "split", dataset),
        ("nan_batch", "training", model),
        ("tiny_test", "evaluation", model),
    ]:
        title = code.replace("_", " ")
        expected = f"- **{title}**: {code} in {where}. *What to do:* fix {where}."
        assert expected in part, (expected, part)
    # the split's negative-weight warning replaces the conversion's, and the report's own
    assert sum("negative weights" in line for line in lines) == 1
    assert "| ttbar | - | 13.00% | 8.10% |" in text
    assert text.splitlines()[2].startswith("**4 warnings**: odd branch (dataset); ")

    edit_json(tmp_path / "conv.json", negative_weights=None, warnings=[])
    edit_json(tmp_path / "split.json", warnings=[])
    text = write_report(tmp_path)
    assert "| ttbar | - | n/a | n/a |" in text
    figures = {"negative_weights": {"fraction": 0.02, "abs_share": 0.01}}
    edit_json(tmp_path / "split.json", samples={"ttbar": figures})
    assert "| ttbar | - | 2.00% | 1.00% |" in write_report(tmp_path)  # the split's figures
    edit_json(tmp_path / "split.json", samples={})
    assert not any("overfitting" in line for line in warnings_of(text))
    # after the best epoch the validation loss rises by 0.3%: overfitting above 0.1%
    text = write_report(tmp_path, overfitting_rise=0.001)
    assert any(
        line.startswith("- **overfitting**: from epoch 2 to 5") for line in warnings_of(text)
    )
