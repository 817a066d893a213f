"""Evaluation plots (matplotlib, Agg): ROC, output distributions, S/√B, control region, training."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hepsnake.evaluate.metrics import BAYES, INCLUSIVE
from hepsnake.io.figure import STYLE, experiment_label, save_figure

# fixed axes of the plots users compare across runs (ROC, rejection vs pt): never from the data
EFFICIENCY_RANGE = (0.2, 1.0)  # signal efficiency (x) of the ROC panels
REJECTION_RANGE = (0.8, 1e5)  # background rejection (log y), ROC and rejection vs pt
RATIO_RANGE = (0.5, 1.5)  # ROC ratio panels: rejection over the reference's


def finish_axes(ax: plt.Axes, title: str, legend: dict[str, Any] | None = None) -> None:
    """Title and legend (``legend``: its keyword arguments; None: no legend) of a panel; in
    an experiment style the experiment label takes the top and the title goes in the legend
    (or the upper left corner). A panel with nothing labelled gets no legend."""
    if legend is not None and not ax.get_legend_handles_labels()[0]:
        legend = None
    if not STYLE:
        ax.set_title(title)
        if legend is not None:
            ax.legend(**legend)
        return
    experiment_label(ax)
    if legend is not None:
        ax.legend(title=title, **legend)
    elif title:
        ax.text(0.03, 0.95, title, transform=ax.transAxes, va="top", fontsize="small")


def plot_roc(
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    output: str | Path,
    title: str = "",
    signal: str = "signal",
    reference: str | None = None,
) -> None:
    """One panel per ROC (inclusive, each background): rejection (log) vs ``signal``
    efficiency of each labelled curve, on fixed axes (:data:`EFFICIENCY_RANGE`,
    :data:`REJECTION_RANGE`, :data:`RATIO_RANGE`) so runs compare by eye; a Bayes-optimal
    curve is dashed, in the colour of the curve before it. With ``reference`` (a key of
    ``curves``), a ratio panel below each shows every curve's rejection over the
    reference's, as puma draws it."""
    panels = list(next(iter(curves.values())))
    rows = 2 if reference else 1
    fig, axes = plt.subplots(
        rows,
        len(panels),
        figsize=(5.5 * len(panels), 4.2 + 1.6 * (rows - 1)),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [3, 1][:rows]},
    )
    low, high = EFFICIENCY_RANGE
    for col, panel in enumerate(panels):
        ax = axes[0][col]
        color = None
        for label, per_panel in curves.items():
            eff, rej = per_panel[panel]
            bayes = label.startswith(BAYES)
            style = {"ls": "--", "color": color} if bayes else {}
            (line,) = ax.plot(eff, rej, label=label, **style)
            color = line.get_color()
            if reference:
                grid = np.linspace(low, high, 161)
                ref_eff, ref_rej = curves[reference][panel]
                ratio = np.interp(grid, eff, rej) / np.interp(grid, ref_eff, ref_rej)
                axes[1][col].plot(grid, ratio, color=color, ls=style.get("ls", "-"))
        ax.set_yscale("log")
        ax.set_xlim(low, high)
        ax.set_ylim(*REJECTION_RANGE)
        ax.set_ylabel("background rejection" if panel == INCLUSIVE else f"{panel} rejection")
        ax.grid(alpha=0.3)
        name = "all backgrounds" if panel == INCLUSIVE else f"{panel} only"
        finish_axes(ax, name, {"fontsize": 8})
        if reference:
            axes[1][col].set_ylim(*RATIO_RANGE)
            axes[1][col].set_ylabel(f"ratio to {reference}", fontsize="small")
            axes[1][col].grid(alpha=0.3)
        axes[-1][col].set_xlabel(f"{signal} efficiency")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, output)


def plot_outputs(
    score: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    panels: dict[str, np.ndarray],
    output: str | Path,
    formula: str,
) -> None:
    """Distribution of the discriminant ``formula`` for each true class, one panel per jet
    selection."""
    edges = np.linspace(*np.quantile(score, [0.001, 0.999]), 50)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, selected) in zip(axes[0], panels.items(), strict=True):
        for i, name in enumerate(class_names):
            sel = selected & (labels == i)
            if np.any(sel):
                ax.hist(score[sel], bins=edges, density=True, histtype="step", label=name)
        ax.set_xlabel(f"discriminant {formula}")
        ax.set_ylabel("normalised")
        finish_axes(ax, title, {})
    fig.tight_layout()
    save_figure(fig, output)


def plot_pt_efficiency(
    edges: list[float], unit: str, per_bin: dict[str, Any], signal: str, output: str | Path
) -> None:
    """Signal efficiency (left) and each background's rejection (right, log) per pt bin at
    one inclusive cut, with binomial error bars, as puma's efficiency-vs-pt plots."""
    lo, hi = np.asarray(edges[:-1], dtype=float), np.asarray(edges[1:], dtype=float)
    x, xerr = (lo + hi) / 2, (hi - lo) / 2
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)

    def draw(ax: plt.Axes, rows: list[dict[str, Any]], key: str, label: str) -> None:
        y = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
        e = np.array([np.nan if r["uncertainty"] is None else r["uncertainty"] for r in rows])
        ax.errorbar(x, y, yerr=e, xerr=xerr, fmt="o", label=label)

    draw(axes[0][0], per_bin["signal"], "efficiency", signal)
    axes[0][0].set_ylabel(f"{signal} efficiency")
    axes[0][0].set_ylim(0, 1.05)
    for b, rows in per_bin["rejection"].items():
        draw(axes[0][1], rows, "rejection", b)
    axes[0][1].set_yscale("log")
    axes[0][1].set_ylim(*REJECTION_RANGE)
    axes[0][1].set_ylabel("background rejection")
    wp = f"at the inclusive {per_bin['working_point']:.0%} {signal} working point"
    for ax in axes[0]:
        ax.set_xlabel(f"jet pt [{unit}]")
        ax.set_xscale("log" if lo[0] > 0 and hi[-1] / lo[0] > 20 else "linear")
        ax.grid(alpha=0.3)
        finish_axes(ax, wp, {"fontsize": 8})
    fig.tight_layout()
    save_figure(fig, output)


def plot_note(text: str, output: str | Path) -> None:
    """A figure that only says ``text`` (a plot the run could not draw, and why)."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    save_figure(fig, output)


def plot_sb_scan(cuts: np.ndarray, significance: np.ndarray, output: str | Path) -> None:
    """S/√B against the cut value, the maximum marked."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(cuts, significance)
    best = int(np.nanargmax(significance))
    ax.axvline(
        cuts[best], ls=":", color="k", label=f"max {significance[best]:.1f} at {cuts[best]:.2f}"
    )
    ax.set_xlabel("cut on discriminant")
    ax.set_ylabel("S / √B (weighted)")
    finish_axes(ax, "", {})
    fig.tight_layout()
    save_figure(fig, output)


def plot_control(
    values: np.ndarray,
    is_data: np.ndarray,
    weights: np.ndarray,
    ks: dict[str, float],
    label: str,
    output: str | Path,
) -> None:
    """Data vs MC of one output in the control region, with the K-S distance and p-value."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    edges = np.linspace(0, 1, 41)
    ax.hist(
        values[~is_data],
        bins=edges,
        weights=weights[~is_data],
        density=True,
        histtype="stepfilled",
        alpha=0.4,
        label="MC",
    )
    ax.hist(
        values[is_data],
        bins=edges,
        weights=weights[is_data],
        density=True,
        histtype="step",
        color="k",
        label="data",
    )
    ax.set_xlabel(label)
    ax.set_ylabel("normalised")
    finish_axes(ax, f"K-S distance {ks['ks']:.3f}, p-value {ks['p_value']:.2g}", {})
    fig.tight_layout()
    save_figure(fig, output)


def plot_training(epochs: list[dict[str, Any]], output: str | Path) -> None:
    """Losses and accuracies per epoch; discriminator loss and K-S when present."""
    keys = epochs[0].keys() if epochs else []
    panels = [
        ("loss", ["train_loss", "val_loss", "train_ce", "val_ce"]),
        ("accuracy", ["train_acc", "val_acc"]),
    ]
    adversarial = [
        k
        for k in keys
        if k.startswith(("train_disc", "val_adv")) or (k.startswith("val_ks_p") and "_pt" not in k)
    ]
    if adversarial:
        panels.append(("adversary", adversarial))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    x = [e["epoch"] for e in epochs]
    for ax, (title, names) in zip(axes[0], panels, strict=True):
        for name in names:
            if name in keys:  # null (NaN or inf when written) is not drawn
                values = [np.nan if e[name] is None else e[name] for e in epochs]
                ax.plot(x, values, marker=".", label=name)
        ax.set_xlabel("epoch")
        finish_axes(ax, title, {"fontsize": 8})
    fig.tight_layout()
    save_figure(fig, output)


def plot_param_efficiency(
    efficiency: dict[str, dict[str, float]], wp: float, eps_b: float, output: str | Path
) -> None:
    """Signal efficiency at each value of each parameter (one panel per parameter), at the
    background efficiency ``eps_b`` of working point ``wp``."""
    fig, axes = plt.subplots(1, len(efficiency), figsize=(6 * len(efficiency), 4.2), squeeze=False)
    for ax, (name, per_value) in zip(axes[0], efficiency.items(), strict=True):
        ax.plot([float(v) for v in per_value], list(per_value.values()), marker="o")
        ax.set_xlabel(name)
        ax.set_ylabel("signal efficiency")
        ax.set_ylim(0, 1)
        finish_axes(ax, f"at background efficiency {eps_b:.3g} ({wp:.0%} working point)")
    fig.tight_layout()
    save_figure(fig, output)


def plot_confusion(matrix: list[list[int]], classes: list[str], title: str, output: Path) -> None:
    """The confusion matrix (rows: true class, normalised per row; counts written in)."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 3, 1.0 * len(classes) + 2.5))
    ax.imshow(rows, vmin=0, vmax=1, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, f"{rows[i, j]:.2f}\n({value:.0f})", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    finish_axes(ax, title)
    fig.tight_layout()
    save_figure(fig, output)


def plot_residuals(
    true: np.ndarray, pred: np.ndarray, pt: np.ndarray | None, label: str, unit: str, output: Path
) -> None:
    """pred/true − 1 of a regression (left) and its resolution (half the 16-84 % width) in
    quantile bins of jet pt (right, when the jets have a pt)."""
    ratio = pred / true - 1
    fig, axes = plt.subplots(1, 2 if pt is not None else 1, figsize=(11, 4.2), squeeze=False)
    lo, hi = np.quantile(ratio, [0.005, 0.995]) if len(ratio) else (-1, 1)
    axes[0][0].hist(ratio, bins=np.linspace(lo, hi, 60), histtype="step")
    axes[0][0].set_xlabel(f"{label}: predicted / true − 1")
    axes[0][0].set_ylabel("jets")
    finish_axes(axes[0][0], label)
    if pt is not None and len(ratio) >= 20:
        edges = np.unique(np.quantile(pt, np.linspace(0, 1, 6)))
        which = np.clip(np.searchsorted(edges, pt, side="right") - 1, 0, len(edges) - 2)
        width = [
            np.subtract(*np.percentile(ratio[which == b], [84, 16])) / 2
            for b in range(len(edges) - 1)
        ]
        centres, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
        axes[0][1].errorbar(centres, width, xerr=half, fmt="o")
        axes[0][1].set_xlabel(f"jet pt [{unit}]")
        axes[0][1].set_ylabel("resolution (16-84 % half width)")
        axes[0][1].grid(alpha=0.3)
        finish_axes(axes[0][1], label)
    fig.tight_layout()
    save_figure(fig, output)
