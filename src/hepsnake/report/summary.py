"""The report's headline: the models, the best one by ``report.best_by`` with its AUC and
rejections at the working points, its gap to the Bayes-optimal AUC where the truth is known,
and how many warnings the run has (numbers copied from the metrics, never recomputed)."""

from typing import Any

from hepsnake.evaluate.metrics import INCLUSIVE
from hepsnake.report.tables import fmt

# report.best_by -> what it ranks (higher is better) and how it reads a model's metrics
BEST_BY = {
    "auc": "AUC against all backgrounds",
    "rejection": "rejection of all backgrounds at the middle working point",
}


def ranking_value(met: dict[str, Any], by: str) -> float:
    """The figure ``by`` (:data:`BEST_BY`) of one model's metrics (None, e.g. an infinite
    rejection written as null, ranks as infinite)."""
    entry = met[INCLUSIVE]
    if by == "auc":
        value = entry["auc"]
    else:
        rejections = list(entry["rejection"].values())
        value = rejections[len(rejections) // 2]["rejection"]
    return float("inf") if value is None else float(value)


def best_model(metrics: dict[str, dict[str, Any]], by: str) -> str:
    """The model with the highest :func:`ranking_value` (the first listed on a tie)."""
    return max(metrics, key=lambda m: ranking_value(metrics[m], by))


def summary_lines(
    metrics: dict[str, dict[str, Any]], signal: str, by: str, warnings: int
) -> list[str]:
    """The "Summary" section: the models, the best one and its figures, the warnings' count."""
    best = best_model(metrics, by)
    entry = metrics[best][INCLUSIVE]
    rejections = ", ".join(
        f"{fmt(r['rejection'])} at {float(wp):.0%}" for wp, r in entry["rejection"].items()
    )
    names = ", ".join(f"`{m}`" for m in metrics)
    lines = [
        "## Summary",
        "",
        f"- Models: {names}.",
        f"- Best by {BEST_BY[by]} (`report.best_by: {by}`): **`{best}`**, AUC {fmt(entry['auc'])}"
        f" for {signal} against all backgrounds; background rejection {rejections} {signal}"
        " efficiency.",
    ]
    if "bayes_auc" in entry:
        lines.append(
            f"- Gap to the Bayes-optimal AUC {fmt(entry['bayes_auc'])} (the toy's true"
            f" likelihood ratio): {fmt(entry['auc_gap'])}."
        )
    plural = "" if warnings == 1 else "s"
    lines += [f"- {warnings} warning{plural} (section Warnings).", ""]
    return lines
