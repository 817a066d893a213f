"""Markdown tables as the report and ``hepsnake compare`` print them."""

from typing import Any


def fmt(value: Any) -> str:
    """Numbers as the report prints them (4 decimals; counts as integers; null, i.e. a
    non-finite value in the JSON, as "-")."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A GitHub/GitLab Markdown table."""

    def cells(values: list[Any]) -> str:
        return "| " + " | ".join(fmt(v).replace("|", "\\|") for v in values) + " |"

    lines = [cells(header), "|" + "|".join(" --- " for _ in header) + "|"]
    lines += [cells(row) for row in rows]
    return [*lines, ""]
