"""The one ROC/AUC (hepsnake.roc): sklearn's on unit and positive weights, finite and monotone
on signed (NLO) weights, |w| where a class's signed weights do not sum above 0."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepsnake.roc import ABS, JETS, SIGNED, WEIGHTED, auc, roc


def scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)


def nlo_weights(n: int, seed: int, negative: float = 0.13) -> np.ndarray:
    """±2.26e5, a share ``negative`` of them negative, as an NLO generator writes them."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < negative, -2.26e5, 2.26e5)


def truth_and_scores(sig, bkg):
    return np.r_[np.ones(len(sig)), np.zeros(len(bkg))], np.r_[sig, bkg]


def test_unit_and_positive_weights_are_sklearns() -> None:
    sig, bkg = scores(3000)
    truth, values = truth_and_scores(sig, bkg)
    plain = roc(sig, bkg)
    assert plain.weights == JETS and not plain.note
    assert plain.auc == roc_auc_score(truth, values)
    w = np.random.default_rng(1).uniform(0.5, 1.5, 6000)
    weighted = roc(sig, bkg, w[:3000], w[3000:])
    assert weighted.weights == WEIGHTED and not weighted.note
    assert weighted.auc == pytest.approx(roc_auc_score(truth, values, sample_weight=w), abs=1e-12)


def test_signed_weights_give_a_finite_monotone_roc_with_a_note() -> None:
    """sklearn's roc_auc_score raises on these weights (the curve steps back); ours makes it
    monotone and says so, and its AUC estimates the unweighted one (the negative jets are
    drawn like the others)."""
    sig, bkg = scores(20000, seed=2)
    ws, wb = nlo_weights(20000, 3), nlo_weights(20000, 4)
    truth, values = truth_and_scores(sig, bkg)
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        roc_auc_score(truth, values, sample_weight=np.r_[ws, wb])
    curve = roc(sig, bkg, ws, wb)
    assert curve.weights == SIGNED
    assert "made monotone" in curve.note and "stepped back" in curve.note
    for x in (curve.fpr, curve.tpr):
        assert np.all(np.diff(x) >= 0) and x[0] == 0 and x[-1] == 1
    assert np.isfinite(curve.auc)
    assert curve.auc == pytest.approx(roc_auc_score(truth, values), abs=0.02)


def test_a_class_of_negative_total_falls_back_to_abs_weights() -> None:
    sig, bkg = scores(500, seed=5)
    ws = -np.abs(nlo_weights(500, 6, negative=0.6))  # signal sums below 0
    curve = roc(sig, bkg, ws, nlo_weights(500, 7))
    assert curve.weights == ABS and "ROC from |w|" in curve.note and "sum to -" in curve.note
    assert curve.auc == pytest.approx(auc(sig, bkg, np.abs(ws), np.full(500, 2.26e5)), abs=1e-12)
    zero = roc(sig, bkg, np.zeros(500), np.ones(500))
    assert zero.weights == JETS and "jets counted once" in zero.note
    assert zero.auc == roc(sig, bkg).auc


def test_perfect_separation_with_signed_weights() -> None:
    sig, bkg = np.array([2.0, 3.0, 4.0]), np.array([0.0, 1.0])
    assert auc(sig, bkg, np.array([1.0, -0.5, 1.0]), np.array([1.0, 1.0])) == 1.0
