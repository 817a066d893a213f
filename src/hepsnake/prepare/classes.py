"""The classes of a split before any jet is written: a class with no jets in a split is an
error (``prepare.empty_class: error``) or is left out of every split (``drop``, a warning); a
class with fewer training jets than ``prepare.min_class_jets`` is a warning."""

import logging
from typing import Any

import numpy as np

from hepsnake.config.contracts import PrepareSpec
from hepsnake.errors import HepsnakeError

log = logging.getLogger("hepsnake")


def check_classes(
    counts: dict[str, np.ndarray], class_names: list[str], prep: PrepareSpec
) -> tuple[list[int], list[dict[str, Any]]]:
    """(the labels to drop, the warnings) for ``counts``: split name → jets per class label.

    Each warning is also logged."""
    dropped: list[int] = []
    warnings: list[dict[str, Any]] = []
    for label, name in enumerate(class_names):
        per_split = {s: int(n[label]) for s, n in counts.items()}
        empty = [s for s, n in per_split.items() if n == 0]
        if not empty:
            continue
        jets = ", ".join(f"{s} {n}" for s, n in per_split.items())
        if prep.empty_class == "error":
            raise HepsnakeError(
                f"split '{empty[0]}'",
                f"class '{name}' has no jets (jets per split: {jets}): add jets of this class,"
                " change prepare.fractions or prepare.seed, or set prepare.empty_class: drop",
            )
        dropped.append(label)
        warnings.append(
            {
                "code": "empty_class",
                "message": f"class '{name}' has no jets in the {' and '.join(empty)} split"
                f" (jets per split: {jets}): left out of every split",
                "advice": f"the model never learns '{name}': add jets of this class, or remove"
                " it from class_names",
            }
        )
    minimum = prep.min_class_jets
    for label, n in enumerate(counts["train"].tolist()):
        if label not in dropped and n < minimum:
            warnings.append(
                {
                    "code": "rare_class",
                    "message": f"class '{class_names[label]}' has {n} training jets"
                    f" (fewer than prepare.min_class_jets = {minimum})",
                    "advice": "simulate more jets of this class or merge it with a similar one"
                    " (prepare.label_map); its output will be poorly trained",
                }
            )
    for warning in warnings:
        log.warning("split: %s", warning["message"])
    return dropped, warnings
