"""The reweighting check plot: each class's jet-variable distributions before and after weights."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hepsnake.config.contracts import WeightsSpec
from hepsnake.io.figure import save_figure


def plot_reweighting(
    jets: np.ndarray, cfg: WeightsSpec, class_names: list[str], output: str | Path
) -> None:
    """One row per reweighting variable: raw (left) and with ``train_weight`` (right)."""
    variables = list(cfg.variables) or ["pt"]
    fig, axes = plt.subplots(len(variables), 2, figsize=(10, 3.6 * len(variables)), squeeze=False)
    for row, var in zip(axes, variables, strict=True):
        values = jets[var]
        edges = np.quantile(values, np.linspace(0, 0.995, 41))
        for cls, name in enumerate(class_names):
            sel = jets["flavour_label"] == cls
            if not sel.any():
                continue
            row[0].hist(values[sel], bins=edges, density=True, histtype="step", label=name)
            row[1].hist(
                values[sel],
                bins=edges,
                weights=jets["train_weight"][sel],
                density=True,
                histtype="step",
                label=name,
            )
        for ax, title in zip(row, ("before weights", "with train_weight"), strict=True):
            ax.set_xlabel(f"jet {var}")
            ax.set_ylabel("normalised")
            ax.set_title(title)
            ax.legend()
    fig.tight_layout()
    save_figure(fig, output)
