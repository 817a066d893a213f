"""Weighted statistics shared by training, evaluation and the plots: the effective number of
entries of signed weights, binomial uncertainties of efficiencies and rejections on it, and
the weighted two-sample Kolmogorov–Smirnov distance."""

import numpy as np
from scipy.stats import kstwo


def effective_count(weights: np.ndarray | None, n: int = 0) -> float:
    """Kish's effective number of entries (Σw)²/Σw² of (signed) ``weights``; ``n`` without
    weights; 0 where there is nothing (or the weights sum to 0)."""
    if weights is None:
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.sum(w**2))
    return float(w.sum() ** 2 / squares) if squares > 0 else 0.0


def efficiency_error(efficiency: np.ndarray | float, n_eff: float) -> np.ndarray:
    """Binomial uncertainty √(ε(1−ε)/n_eff) of an efficiency measured on ``n_eff`` effective
    entries (NaN without entries)."""
    eff = np.asarray(efficiency, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(np.clip(eff * (1 - eff), 0, None) / n_eff) if n_eff > 0 else eff * np.nan


def rejection_error(rejection: np.ndarray | float, n_eff: float) -> np.ndarray:
    """Binomial uncertainty of a rejection 1/ε on ``n_eff`` effective background entries:
    σ_ε/ε² (NaN where no background passes, i.e. infinite rejection)."""
    rej = np.asarray(rejection, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.where(np.isfinite(rej) & (rej > 0), 1 / rej, np.nan)
        return efficiency_error(eps, n_eff) / eps**2


def weighted_ks(
    a: np.ndarray,
    b: np.ndarray,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> tuple[float, float]:
    """(D, p-value): the largest gap between the weighted empirical CDFs of ``a`` and ``b``.

    With unit weights D equals ``scipy.stats.ks_2samp``'s statistic. The p-value uses the
    Kish effective sample sizes (Σw)²/Σw² in the exact two-sided K-S distribution.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    wa = np.ones(len(a)) if weights_a is None else np.asarray(weights_a, dtype=np.float64)
    wb = np.ones(len(b)) if weights_b is None else np.asarray(weights_b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0 or wa.sum() <= 0 or wb.sum() <= 0:
        return float("nan"), float("nan")
    order_a, order_b = np.argsort(a), np.argsort(b)
    a, wa, b, wb = a[order_a], wa[order_a], b[order_b], wb[order_b]
    points = np.union1d(a, b)
    cdf_a = np.concatenate([[0.0], np.cumsum(wa)])[np.searchsorted(a, points, side="right")]
    cdf_b = np.concatenate([[0.0], np.cumsum(wb)])[np.searchsorted(b, points, side="right")]
    d = float(np.max(np.abs(cdf_a / wa.sum() - cdf_b / wb.sum())))
    n_a, n_b = effective_count(wa), effective_count(wb)
    n_eff = max(1, round(n_a * n_b / (n_a + n_b)))
    return d, float(kstwo.sf(d, n_eff))
