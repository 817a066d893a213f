"""Atomic saving of matplotlib figures and the experiment style of the plots (imported by the
plotting modules only)."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path

if TYPE_CHECKING:
    from hepsnake.config.contracts import PlotStyle

# the evaluate.plot_style in use (set once per job by use_style; empty: plain matplotlib)
STYLE: list["PlotStyle"] = []


def use_style(style: "PlotStyle | None") -> None:
    """Draw every later figure in ``style``'s experiment style (mplhep), or plain matplotlib
    when there is none."""
    STYLE.clear()
    if style is None:
        return
    try:
        import mplhep
    except ImportError as exc:
        raise HepsnakeError(
            "config: evaluate/plot_style", "needs mplhep (pip install mplhep)"
        ) from exc
    mplhep.style.use(style.experiment)
    STYLE.append(style)


def experiment_label(ax: plt.Axes) -> None:
    """The experiment label (e.g. "ATLAS Simulation Internal", the run text on the right) on
    ``ax`` when an experiment style is in use."""
    if STYLE:
        import mplhep

        style = STYLE[0]
        mplhep.label.exp_label(
            exp=style.experiment,
            text=style.label or "",
            data=style.simulation is False,
            rlabel=style.text or "",
            loc=0,
            ax=ax,
        )


def save_figure(fig: plt.Figure, output: str | os.PathLike, dpi: int = 90) -> None:
    """Write ``fig`` atomically in the format of ``output``'s suffix (PNG without one), close it."""
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
