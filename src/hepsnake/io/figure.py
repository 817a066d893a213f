"""Atomic saving of matplotlib figures (imported by the plotting modules only)."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from hepsnake.io.atomic import atomic_path


def save_figure(fig: plt.Figure, output: str | os.PathLike, dpi: int = 90) -> None:
    """Write ``fig`` atomically in the format of ``output``'s suffix (PNG without one), close it."""
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
