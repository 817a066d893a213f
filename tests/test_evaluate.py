"""Metrics against sklearn on known inputs, and the report's numbers against the metrics JSON."""

import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from hepsnake.evaluate.metrics import auc, discriminant, model_metrics, rejection_at
from hepsnake.evaluate.predict import with_columns


def known_jets(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[label]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    jets = np.zeros(
        n,
        dtype=[
            ("label", "i4"),
            ("mS", "f4"),
            ("truth_logp_qcd", "f4"),
            ("truth_logp_sig", "f4"),
            ("truth_logp_bib", "f4"),
        ],
    )
    jets["label"] = label
    jets["mS"] = np.where(label == 1, rng.choice([5.0, 40.0], n), np.nan)
    for i, c in enumerate(("qcd", "sig", "bib")):
        jets[f"truth_logp_{c}"] = 2.0 * logits[:, i]
    columns = {
        f"m_p{c}": probs[:, i].astype(np.float32) for i, c in enumerate(("qcd", "sig", "bib"))
    }
    return with_columns(jets, columns), probs


def test_auc_and_rejection_match_sklearn():
    jets, probs = known_jets()
    metrics = model_metrics(jets, "m", ["qcd", "sig", "bib"], "sig", [0.5, 0.7], [5.0])
    sig5 = (jets["label"] == 1) & (jets["mS"] == 5.0)
    for b, name in ((0, "qcd"), (2, "bib")):
        is_b = jets["label"] == b
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
    assert metrics["masses"]["40"]["unseen"] and not metrics["masses"]["5"]["unseen"]


def test_perfect_and_random_scores():
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    rng = np.random.default_rng(1)
    assert abs(auc(rng.normal(size=20000), rng.normal(size=20000)) - 0.5) < 0.01
    rej = rejection_at(rng.normal(1, 1, 50000), rng.normal(0, 1, 50000), [0.5])["0.5"]
    # cut at the signal median (x = 1): background efficiency 1 - Φ(1) = 0.1587
    assert rej["rejection"] == pytest.approx(1 / 0.1587, rel=0.03)
    probs = {"sig": np.array([0.5]), "a": np.array([0.25]), "b": np.array([0.25])}
    assert discriminant(probs, "sig", {"a": 0.5, "b": 0.5})[0] == pytest.approx(np.log(2))


def report_numbers_match(report_text: str, metrics: dict) -> list[str]:
    """Assert the comparison-table AUCs in report.md equal the metrics JSON (4 decimals);
    return the image links of the report."""
    for model, met in metrics.items():
        row = next(line for line in report_text.splitlines() if line.startswith(f"| {model} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        numbers = []
        for entry in met["backgrounds"].values():
            numbers.append(f"{entry['auc']:.4f}")
            numbers.append(f"{entry['bayes_auc']:.4f}" if "bayes_auc" in entry else "-")
        assert cells[2 : 2 + len(numbers)] == numbers, (cells, numbers)
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_text)
