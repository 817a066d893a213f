"""The one style of every plot (mplhep) and the atomic saving of figures, each as PNG (for the
report) and PDF (for notes); imported by the plotting modules only.

Importing this module puts the neutral style in place; :func:`use_style` switches to an
experiment's style and label (``evaluate.plot_style``). The fonts are mplhep's own (TeX Gyre
Heros, shipped with mplhep), so a plot looks the same on every machine.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep

from hepsnake.io.atomic import atomic_path
from hepsnake.paths import figure_files

if TYPE_CHECKING:
    from hepsnake.config.contracts import PlotStyle

NEUTRAL = "ROOT"  # mplhep's experiment-free style, used when the config names no experiment
# sizes for the figures drawn here (mplhep's styles are sized for 10 x 10 inch figures)
SIZES = {
    "font.size": 15,
    "axes.labelsize": "medium",
    "axes.titlesize": "medium",
    "xtick.labelsize": "small",
    "ytick.labelsize": "small",
    "legend.fontsize": "small",
    "legend.title_fontsize": "small",
    "xtick.major.size": 8,
    "ytick.major.size": 8,
    "xtick.minor.size": 4,
    "ytick.minor.size": 4,
    "lines.linewidth": 1.8,
    "svg.hashsalt": "hepsnake",
}

# the evaluate.plot_style in use (set by use_style; empty: no experiment label)
STYLE: list["PlotStyle"] = []


def use_style(style: "PlotStyle | None") -> None:
    """Draw every later figure in ``style``'s experiment style and label (mplhep), or in the
    neutral style without a label when there is none."""
    STYLE.clear()
    plt.style.use("default")
    mplhep.style.use(style.experiment if style is not None else NEUTRAL)
    plt.rcParams.update(SIZES)
    # glyphs the style's font lacks (∈, ≤, √) come from matplotlib's own DejaVu Sans
    plt.rcParams["font.family"] = [*plt.rcParams["font.family"], "DejaVu Sans"]
    if style is not None:
        STYLE.append(style)


def experiment_label(ax: plt.Axes) -> None:
    """The experiment label (e.g. "ATLAS Simulation Internal", the run text on the right) on
    ``ax`` when an experiment style is in use."""
    if STYLE:
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
    """Write ``fig`` atomically as every file of :func:`hepsnake.paths.figure_files`
    (``output``, a PNG, and its PDF twin), without time stamps, then close it."""
    for path in figure_files(output):
        fmt = Path(path).suffix.lstrip(".")
        metadata = {"CreationDate": None} if fmt == "pdf" else {}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    plt.close(fig)


use_style(None)
