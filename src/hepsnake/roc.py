"""The one ROC curve and AUC of hepsnake (evaluate, export and the validation AUC all call
:func:`roc`), defined for any per-jet weights, negative ones included.

NLO generators write negative weights. The efficiencies are then signed sums (of the jets
above the threshold over all jets of the class), which are unbiased but can step back as the
threshold falls; such a curve is made monotone by its running maximum, clipped to [0, 1], and
``note`` says how far it stepped back. Where the signed weights of the signal or of the
background do not sum to a positive number, the ROC is that of |w| (and, should those sum to
0, that of the jets counted once), and ``note`` says so. scikit-learn computes the curve and
the area (importing it takes about a second).
"""

from dataclasses import dataclass

import numpy as np

# what a Roc's ``weights`` says
JETS = "jets"  # every jet counts once
WEIGHTED = "weighted"  # non-negative weights
SIGNED = "signed"  # weights of both signs
ABS = "|w|"  # signed weights replaced by their magnitude (see the note)


@dataclass(frozen=True)
class Roc:
    """Background efficiency ``fpr`` and signal efficiency ``tpr`` along a falling threshold
    (both non-decreasing, from 0 to 1), the area under it, the weights it used and a note
    (empty unless the curve had to be made monotone or fell back to other weights)."""

    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    weights: str
    note: str = ""


def roc(
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    weight_sig: np.ndarray | None = None,
    weight_bkg: np.ndarray | None = None,
) -> Roc:
    """The ROC of signal scores against background scores, each jet weighted by its weight
    (None: 1). Needs at least one signal and one background jet."""
    from sklearn.metrics import auc as area
    from sklearn.metrics import roc_curve

    if not len(score_sig) or not len(score_bkg):
        raise ValueError("a ROC needs signal and background jets")
    truth = np.r_[np.ones(len(score_sig)), np.zeros(len(score_bkg))]
    scores = np.r_[score_sig, score_bkg]
    weights, kind, note = usable_weights(score_sig, score_bkg, weight_sig, weight_bkg)
    fpr, tpr, _ = roc_curve(truth, scores, sample_weight=weights)
    if kind == SIGNED:
        step_back = max(np.max(np.maximum.accumulate(x) - x) for x in (fpr, tpr))
        if step_back > 0:
            fpr, tpr = (np.clip(np.maximum.accumulate(x), 0.0, 1.0) for x in (fpr, tpr))
            note = (
                f"signed weights: the ROC stepped back by up to {step_back:.3g} in efficiency;"
                " made monotone (running maximum)"
            )
    return Roc(fpr, tpr, float(area(fpr, tpr)), kind, note)


def auc(
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    weight_sig: np.ndarray | None = None,
    weight_bkg: np.ndarray | None = None,
) -> float:
    """The area under :func:`roc`."""
    return roc(score_sig, score_bkg, weight_sig, weight_bkg).auc


def usable_weights(
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    weight_sig: np.ndarray | None,
    weight_bkg: np.ndarray | None,
) -> tuple[np.ndarray | None, str, str]:
    """(sample weights of signal then background, or None; their kind; a note) such that
    each class's weights sum to a positive number (see the module's docstring)."""
    if weight_sig is None and weight_bkg is None:
        return None, JETS, ""
    ws = np.ones(len(score_sig)) if weight_sig is None else np.asarray(weight_sig, np.float64)
    wb = np.ones(len(score_bkg)) if weight_bkg is None else np.asarray(weight_bkg, np.float64)
    if not (np.isfinite(ws).all() and np.isfinite(wb).all()):
        raise ValueError("non-finite jet weights")
    signed = bool((ws < 0).any() or (wb < 0).any())
    if ws.sum() > 0 and wb.sum() > 0:
        return np.r_[ws, wb], SIGNED if signed else WEIGHTED, ""
    sums = f"the signal's weights sum to {ws.sum():.4g}, the background's to {wb.sum():.4g}"
    ws, wb = np.abs(ws), np.abs(wb)
    if ws.sum() > 0 and wb.sum() > 0:
        return np.r_[ws, wb], ABS, f"{sums}: ROC from |w|"
    return None, JETS, f"{sums}: ROC from the jets counted once"
