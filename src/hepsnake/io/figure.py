"""Atomic saving of matplotlib figures and the experiment style of the plots (imported by the
plotting modules only)."""

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path

# the evaluate.plot_style in use (set once per job by use_style; empty: plain matplotlib)
STYLE: dict[str, Any] = {}


def use_style(style: dict[str, Any] | None) -> None:
    """Draw every later figure in ``style``'s experiment style (mplhep), or plain matplotlib
    when it names no experiment."""
    STYLE.clear()
    if not style or not style.get("experiment"):
        return
    try:
        import mplhep
    except ImportError as exc:
        raise HepsnakeError(
            "config: evaluate/plot_style", "needs mplhep (pip install mplhep)"
        ) from exc
    mplhep.style.use(style["experiment"])
    STYLE.update(style)


def experiment_label(ax: plt.Axes) -> None:
    """The experiment label (e.g. "ATLAS Simulation Internal", the run text on the right) on
    ``ax`` when an experiment style is in use."""
    if STYLE:
        import mplhep

        mplhep.label.exp_label(
            exp=STYLE["experiment"],
            text=STYLE.get("label", ""),
            data=not STYLE.get("simulation", True),
            rlabel=STYLE.get("text", ""),
            loc=0,
            ax=ax,
        )


def save_figure(fig: plt.Figure, output: str | os.PathLike, dpi: int = 90) -> None:
    """Write ``fig`` atomically in the format of ``output``'s suffix (PNG without one), close it."""
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
