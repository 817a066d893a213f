"""Truth-leak guard: training inputs may not contain labels, truth, event identifiers or weights."""

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from hepsnake.errors import HepsnakeError

IDENTIFIERS = {"eventNumber", "runNumber", "mcChannelNumber", "lumiBlock", "sample"}
LABELS_AND_WEIGHTS = {"label", "is_data", "weight", "mcEventWeight", "train_weight"}


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


def check_inputs(
    inputs: dict[str, Any],
    label_source: str | None = None,
    where: Callable[..., str] | None = None,
) -> None:
    """Raise naming the first forbidden training variable, unless ``allow_truth_inputs``.

    ``label_source`` (the ``prepare.label_map`` variable) is truth too; ``where`` turns the
    key path into the error's ``FILE: key/path`` (default ``config: key/path``).
    """
    if inputs["allow_truth_inputs"]:
        return
    for collection, variables in inputs["variables"].items():
        for i, variable in enumerate(variables):
            reason = forbidden_reason(variable, inputs["truth"], label_source)
            if reason:
                at = (
                    where("inputs", "variables", collection, i)
                    if where
                    else f"config: inputs/variables/{collection}/{variable}"
                )
                raise HepsnakeError(
                    at,
                    f"truth leak: '{variable}' {reason} (set inputs.allow_truth_inputs to allow)",
                )
