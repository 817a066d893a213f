"""Truth-leak guard: training inputs may not contain labels, truth, event identifiers or weights."""

import json
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.errors import HepsnakeError

if TYPE_CHECKING:
    from hepsnake.config.contracts import Inputs

IDENTIFIERS = {"eventNumber", "runNumber", "mcChannelNumber", "lumiBlock", "sample"}
LABELS_AND_WEIGHTS = {
    "flavour_label",
    "label",
    "is_data",
    "weight",
    "mcEventWeight",
    "train_weight",
}
RANK_LIMIT = 0.999  # |Spearman| from which an input counts as a copy of a truth column


def forbidden_reason(
    variable: str, truth: list[str], label_source: str | None = None
) -> str | None:
    """Why ``variable`` may not be a training input, or None if it may."""
    if variable in LABELS_AND_WEIGHTS:
        return "is a label or weight"
    if variable == label_source:
        return "is the prepare.label_map variable (the class labels are made from it)"
    if variable.lower().startswith("truth"):
        return "is a truth field (truth*)"
    if any(fnmatchcase(variable, pattern) for pattern in truth):
        return "is listed in inputs.truth"
    if variable in IDENTIFIERS:
        return "is an event identifier"
    return None


def is_truth_column(name: str, truth: list[str], label_variable: str | None) -> bool:
    """Whether a column of a prepared table is truth: the label, truth*, an ``inputs.truth``
    pattern or the ``prepare.label_map`` variable."""
    return (
        name in ("flavour_label", "label")
        or name == label_variable
        or name.lower().startswith("truth")
        or any(fnmatchcase(name, pattern) for pattern in truth)
    )


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """|Spearman| of two columns over rows where both are finite (1 if equal, NaN if either
    is constant)."""
    from scipy.stats import rankdata  # not at module level: config validation imports this

    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) and np.array_equal(a, b):
        return 1.0
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return abs(float(np.corrcoef(rankdata(a), rankdata(b))[0, 1]))


def label_map_variable(attrs: Any) -> str | None:
    """The ``prepare.label_map`` variable recorded in a prepared split's attributes."""
    prepare = json.loads(attrs.get("prepare", "{}"))
    return (prepare.get("label_map") or {}).get("variable")


def check_input_values(
    table: np.ndarray,
    coll: str,
    inputs: "Inputs",
    label_variable: str | None,
    where: str,
) -> None:
    """Raise naming both columns if an input of ``coll`` equals a truth column of the same
    ``table`` (a sample of its records) up to a monotone transform: |Spearman| ≥
    :data:`RANK_LIMIT`. Catches a reader mapping that copies truth under another name."""
    if inputs.allow_truth_inputs:
        return
    truth = list(inputs.truth)
    names = table.dtype.names or ()
    truths = [n for n in names if is_truth_column(n, truth, label_variable)]
    for variable in inputs.variables[coll]:
        x = table[variable].astype(np.float64)
        for column in truths:
            if column == variable:
                continue
            rho = rank_correlation(x, table[column].astype(np.float64))
            if rho >= RANK_LIMIT:
                raise HepsnakeError(
                    where,
                    f"truth leak: input '{coll}.{variable}' equals truth column '{column}' up "
                    f"to a monotone transform (|Spearman| {rho:.4f} over {len(x)} values; set "
                    "inputs.allow_truth_inputs to allow)",
                )
