"""Negative physics weights in a sample (NLO generators write them): the figures the convert
and split summaries give per sample, and the warning a reviewer reads in the report."""

from collections.abc import Iterable
from typing import Any

import numpy as np

# what the training weight of a jet with w < 0 becomes under each prepare.negative_weights
POLICIES = {"abs": "|w|", "keep": "w (signed)", "zero": "0"}


def figures(blocks: Iterable[np.ndarray]) -> dict[str, float]:
    """``fraction``: the share of jets with a negative weight, ``abs_share``: their share of
    Σ|w|, over the weights of ``blocks`` (summed block by block, so the same blocks give the
    same figures); 0 for no jets or no weight."""
    jets = negative = 0
    total = negative_total = 0.0
    for weights in blocks:
        magnitude = np.abs(weights.astype(np.float64))
        below = weights < 0
        jets += len(weights)
        negative += int(np.count_nonzero(below))
        total += float(magnitude.sum())
        negative_total += float(magnitude[below].sum())
    return {
        "fraction": negative / jets if jets else 0.0,
        "abs_share": negative_total / total if total > 0 else 0.0,
    }


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
