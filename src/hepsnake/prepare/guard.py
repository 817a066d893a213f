"""Truth-leak guard: training inputs may not contain labels, truth, event identifiers or weights."""

from fnmatch import fnmatchcase
from typing import Any

from hepsnake.errors import HepsnakeError

IDENTIFIERS = {"eventNumber", "runNumber", "mcChannelNumber", "lumiBlock", "sample"}
LABELS_AND_WEIGHTS = {"label", "is_data", "weight", "mcEventWeight", "train_weight"}


def forbidden_reason(variable: str, truth: list[str]) -> str | None:
    """Why ``variable`` may not be a training input, or None if it may."""
    if variable in LABELS_AND_WEIGHTS:
        return "is a label or weight"
    if variable.lower().startswith("truth"):
        return "is a truth field (truth*)"
    if any(fnmatchcase(variable, pattern) for pattern in truth):
        return "is listed in inputs.truth"
    if variable in IDENTIFIERS:
        return "is an event identifier"
    return None


def check_inputs(inputs: dict[str, Any]) -> None:
    """Raise naming the first forbidden training variable, unless ``allow_truth_inputs``."""
    if inputs.get("allow_truth_inputs", False):
        return
    truth = list(inputs.get("truth", []))
    for collection, variables in inputs["variables"].items():
        for variable in variables:
            reason = forbidden_reason(variable, truth)
            if reason:
                raise HepsnakeError(
                    f"config: inputs/variables/{collection}/{variable}",
                    f"truth leak: '{variable}' {reason} (set inputs.allow_truth_inputs to allow)",
                )
