"""Weighted two-sample Kolmogorov–Smirnov distance (shared by training and evaluation)."""

import numpy as np
from scipy.stats import kstwo


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
    n_a, n_b = wa.sum() ** 2 / np.sum(wa**2), wb.sum() ** 2 / np.sum(wb**2)
    n_eff = max(1, round(n_a * n_b / (n_a + n_b)))
    return d, float(kstwo.sf(d, n_eff))
