"""Negative physics weights in a sample (NLO generators write them): the figures the convert
and split summaries give per sample, and the warning a reviewer reads in the report."""

from collections.abc import Iterable
from typing import Any

import numpy as np

# what the training weight of a jet with w < 0 becomes under each prepare.negative_weights
POLICIES = {"abs": "|w|", "keep": "w (signed)", "zero": "0"}
SUMS = ("jets", "negative", "abs", "negative_abs")  # what :func:`weight_sums` adds up


def weight_sums(blocks: Iterable[np.ndarray]) -> dict[str, float]:
    """Over the weights of ``blocks`` (summed block by block, so the same blocks give the same
    sums): ``jets``, ``negative`` (jets with w < 0), ``abs`` (Σ|w|) and ``negative_abs`` (Σ|w|
    of the negative ones). The sums of several sets of weights add up (:func:`added`)."""
    sums = dict.fromkeys(SUMS, 0.0)
    for weights in blocks:
        magnitude = np.abs(weights.astype(np.float64))
        below = weights < 0
        sums["jets"] += len(weights)
        sums["negative"] += int(np.count_nonzero(below))
        sums["abs"] += float(magnitude.sum())
        sums["negative_abs"] += float(magnitude[below].sum())
    return sums


def added(sums: Iterable[dict[str, float]]) -> dict[str, float]:
    """The :func:`weight_sums` of several sets of weights added up."""
    parts = list(sums)
    return {key: sum((s[key] for s in parts), 0.0) for key in SUMS}


def figures_of(sums: dict[str, float]) -> dict[str, float]:
    """``fraction``: the share of jets with a negative weight, ``abs_share``: their share of
    Σ|w|, from :func:`weight_sums`; 0 for no jets or no weight."""
    return {
        "fraction": sums["negative"] / sums["jets"] if sums["jets"] else 0.0,
        "abs_share": sums["negative_abs"] / sums["abs"] if sums["abs"] > 0 else 0.0,
    }


def figures(blocks: Iterable[np.ndarray]) -> dict[str, float]:
    """The :func:`figures_of` the weights of ``blocks``."""
    return figures_of(weight_sums(blocks))


def policy_text(policy: str) -> str:
    """``prepare.negative_weights: abs (|w|)``: the policy and the training weight it gives."""
    return f"prepare.negative_weights: {policy} ({POLICIES[policy]})"


def warning(sample: str, found: dict[str, float], training: str | None) -> dict[str, Any] | None:
    """The ``negative_weights`` warning of ``sample`` (None without negative weights): the
    figures and, at the split, ``training``: what the jets' training weights are."""
    if not found["fraction"]:
        return None
    message = (
        f"sample '{sample}': {100 * found['fraction']:.3g} % of the jets have negative weights,"
        f" {100 * found['abs_share']:.3g} % of Σ|w|"
    )
    if training is None:
        advice = (
            "prepare.negative_weights sets their training weight (default abs: |w|);"
            " evaluation uses the signed weights"
        )
    else:
        message += f"; training weights: {training}"
        advice = (
            "evaluation uses the signed weights; negative_weights keep trains on the signed"
            " weights (unbiased, noisier), abs on |w| (stable; biased where negative weights"
            " cluster in phase space), zero leaves them out"
        )
    return {"code": "negative_weights", "message": message, "advice": advice}
