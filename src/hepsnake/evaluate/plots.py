"""Evaluation plots in the one mplhep style (:mod:`hepsnake.io.figure`), each saved as PNG and
PDF: ROC with a ratio panel and statistical bands, efficiency and rejection per bin of a jet
variable, data/MC with a ratio panel, training curves, S/√B, control and task plots.

They match puma's (the FTAG plotting library, not installed: puma-hep pins numpy < 2.4) with
mplhep and matplotlib: rejection on a log axis against signal efficiency, binomial uncertainty
bands from the effective number of background jets, a ratio panel to a reference tagger.
"""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hepsnake.evaluate.metrics import BAYES, INCLUSIVE
from hepsnake.io.figure import STYLE, experiment_label, save_figure
from hepsnake.stats import rejection_error

# curve label -> ROC panel -> (signal efficiency, rejection), as metrics.curves gives them
Curves = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
# curve label -> ROC panel -> effective number of background jets (the bands' statistics)
Counts = dict[str, dict[str, float]]

LOWEST_EFFICIENCY = 0.2  # the ROC's x axis starts here unless the curves start higher
BAYES_LABEL = f"{BAYES} (true likelihood ratio)"  # the legend of the toy truth's curve
RATIO_POINTS = 161  # efficiencies at which the ratio panel compares the curves


def finish_axes(ax: plt.Axes, title: str, legend: dict[str, Any] | None = None) -> None:
    """Title and legend (``legend``: its keyword arguments; None: no legend) of a panel; in
    an experiment style the experiment label takes the top and the title goes in the legend
    (or the upper left corner). A panel with nothing labelled gets no legend."""
    if legend is not None and not ax.get_legend_handles_labels()[0]:
        legend = None
    if not STYLE:
        ax.set_title(title, loc="left", fontsize="small")
        if legend is not None:
            ax.legend(**legend)
        return
    experiment_label(ax)
    if legend is not None:
        ax.legend(title=title, **legend)
    elif title:
        ax.text(0.03, 0.95, title, transform=ax.transAxes, va="top", fontsize="small")


def efficiency_low(panel: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Where a ROC panel's x axis starts: :data:`LOWEST_EFFICIENCY`, or (rounded down to a
    tenth) the efficiency where the last of its curves starts (below it some curve has no
    background jet left)."""
    starts = [float(np.min(eff)) for eff, _ in panel if len(eff)]
    start = np.floor(max(starts, default=0.0) * 10) / 10
    return float(max(LOWEST_EFFICIENCY, min(start, 0.9)))


def log_limits(values: np.ndarray, floor: float | None = None) -> tuple[float, float]:
    """Log-axis limits fitted to the finite positive ``values``: from the decade below the
    smallest (or ``floor``) to the decade above twice the largest (room for the legend)."""
    good = values[np.isfinite(values) & (values > 0)]
    if not len(good):
        return (floor or 0.1, 10.0)
    low = floor if floor is not None else 10 ** np.floor(np.log10(good.min()))
    return float(low), float(10 ** np.ceil(np.log10(2 * good.max())))


def ratio_limits(ratios: np.ndarray) -> tuple[float, float]:
    """Ratio-panel limits fitted to the bulk (5th to 95th percentile) of the finite
    ``ratios``, in steps of 0.1, always showing 1 ± 0.1: a few points of low statistics do
    not squeeze the rest."""
    good = ratios[np.isfinite(ratios)]
    low, high = np.percentile(good, [5, 95]) if len(good) else (1.0, 1.0)
    low = min(0.9, np.floor(low * 10) / 10)
    high = max(1.1, np.ceil(high * 10) / 10)
    return float(max(low, 0.0)), float(high)


def curve_style(label: str, previous: str | None) -> dict[str, Any]:
    """How a ROC curve is drawn: the toy truth's (:data:`BAYES`) dashed in black, a truth
    curve of one parameter point (``Bayes-optimal mS=16``) dashed in the colour of the curve
    before it (that point's model curve), any other solid in the next colour."""
    if label == BAYES:
        return {"ls": "--", "color": "black", "label": BAYES_LABEL}
    if label.startswith(BAYES):
        return {"ls": "--", "color": previous, "label": label}
    return {"label": label}


def plot_roc(
    curves: Curves,
    output: str | Path,
    title: str = "",
    signal: str = "signal",
    reference: str | None = None,
    counts: Counts | None = None,
) -> None:
    """One column per ROC (inclusive, each background): rejection (log) against ``signal``
    efficiency of each labelled curve, with its binomial uncertainty band where ``counts``
    gives the curve's effective number of background jets; below, each curve's rejection over
    the ``reference`` curve's (default: the first), as puma draws them. The axes are fitted
    to the curves (:func:`efficiency_low`, :func:`log_limits`, :func:`ratio_limits`); the
    toy truth's curve is labelled Bayes-optimal (:func:`curve_style`)."""
    panels = list(next(iter(curves.values())))
    reference = reference if reference in curves else next(iter(curves))
    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(6.5 * len(panels), 6.5),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [3, 1]},
        layout="constrained",
    )
    for col, panel in enumerate(panels):
        ax, rax = axes[0][col], axes[1][col]
        low = efficiency_low([per[panel] for per in curves.values()])
        grid = np.linspace(low, 1.0, RATIO_POINTS)
        ref_eff, ref_rej = curves[reference][panel]
        ref_at = np.interp(grid, ref_eff, ref_rej, left=np.nan)
        shown, ratios, colour = [], [], None
        for label, per_panel in curves.items():
            eff, rej = per_panel[panel]
            inside = eff >= low
            style = curve_style(label, colour)
            (line,) = ax.plot(eff[inside], rej[inside], **style)
            colour = line.get_color()
            ratio = np.interp(grid, eff, rej, left=np.nan) / ref_at
            rax.plot(grid, ratio, color=colour, ls=line.get_linestyle())
            shown.append(rej[inside])
            ratios.append(ratio)
            if counts is not None and label in counts:
                err = rejection_error(rej[inside], counts[label][panel])
                ax.fill_between(
                    eff[inside], rej[inside] - err, rej[inside] + err, color=colour, alpha=0.2, lw=0
                )
                at = np.interp(grid, eff, rej, left=np.nan)
                rel = rejection_error(at, counts[label][panel]) / at
                rax.fill_between(
                    grid, ratio * (1 - rel), ratio * (1 + rel), color=colour, alpha=0.2, lw=0
                )
        ax.set_yscale("log")
        ax.set_xlim(low, 1.0)
        ax.set_ylim(*log_limits(np.concatenate(shown), floor=1.0))
        ax.set_ylabel("background rejection" if panel == INCLUSIVE else f"{panel} rejection")
        ax.grid(alpha=0.3)
        ax.tick_params(labelbottom=False)
        name = "all backgrounds" if panel == INCLUSIVE else f"{panel} only"
        legend = {"loc": "upper right", "fontsize": "x-small" if len(curves) > 4 else "small"}
        finish_axes(ax, name, legend)
        rax.set_ylim(*ratio_limits(np.concatenate(ratios)))
        rax.set_ylabel(f"ratio to {reference}", fontsize="x-small")
        rax.grid(alpha=0.3)
        rax.set_xlabel(f"{signal} efficiency")
    if title:
        fig.suptitle(title, fontsize="small")
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


def binned_points(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, uncertainties) of ``key`` in per-bin ``rows`` (None: NaN, not drawn)."""
    values = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
    errors = np.array([np.nan if r["uncertainty"] is None else r["uncertainty"] for r in rows])
    return values, errors


def plot_binned_efficiency(
    variable: str, edges: list[float], per_bin: dict[str, Any], signal: str, output: str | Path
) -> None:
    """Per bin of ``variable`` (its axis label, e.g. ``jet pt [GeV]``), from ``per_bin`` as
    :func:`hepsnake.evaluate.metrics.binned_efficiency` gives it: the signal efficiency (left)
    and each background's rejection (middle, log) at the one inclusive cut of the working
    point, and each background's rejection with the cut set in every bin to keep that share
    of its signal (right, puma's "fixed efficiency per bin"); error bars from the effective
    number of (weighted) jets in the bin."""
    lo, hi = np.asarray(edges[:-1], dtype=float), np.asarray(edges[1:], dtype=float)
    x, xerr = (lo + hi) / 2, (hi - lo) / 2
    fixed, flat = per_bin["at_working_point"], per_bin["at_bin_efficiency"]
    wp = f"{fixed['working_point']:.0%}"
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), squeeze=False)
    eff, err = binned_points(fixed["signal"], "efficiency")
    axes[0][0].errorbar(x, eff, yerr=err, xerr=xerr, fmt="o", label=signal)
    axes[0][0].axhline(fixed["working_point"], ls=":", color="grey")
    axes[0][0].set_ylabel(f"{signal} efficiency")
    axes[0][0].set_ylim(0, 1.2)
    shown = []
    for ax, mode in ((axes[0][1], fixed), (axes[0][2], flat)):
        for b, rows in mode["rejection"].items():
            rej, err = binned_points(rows, "rejection")
            ax.errorbar(x, rej, yerr=err, xerr=xerr, fmt="o", label=b)
            shown.append(rej)
        ax.set_yscale("log")
        ax.set_ylabel("background rejection")
    limits = log_limits(np.concatenate(shown)) if shown else (1.0, 10.0)
    titles = (
        f"inclusive cut at {wp} {signal} efficiency",
        f"inclusive cut at {wp} {signal} efficiency",
        f"cut at {wp} {signal} efficiency in each bin",
    )
    linear = lo[0] <= 0 or hi[-1] / lo[0] <= 20
    for col, (ax, title) in enumerate(zip(axes[0], titles, strict=True)):
        if col:
            ax.set_ylim(*limits)
        ax.set_xlabel(variable)
        ax.set_xscale("linear" if linear else "log")
        ax.grid(alpha=0.3)
        finish_axes(ax, title, {"loc": "upper right"})
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


def normalised_histogram(
    values: np.ndarray, weights: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(density, statistical uncertainty √Σw² of each bin, scaled alike) of weighted values."""
    counts, _ = np.histogram(values, bins=edges, weights=weights)
    squares, _ = np.histogram(values, bins=edges, weights=weights**2)
    total = counts.sum()
    scale = total * np.diff(edges) if total else np.ones(len(counts))
    return counts / scale, np.sqrt(squares) / scale


def plot_control(
    values: np.ndarray,
    is_data: np.ndarray,
    weights: np.ndarray,
    ks: dict[str, float],
    label: str,
    output: str | Path,
) -> None:
    """Data (points) against MC (filled, with its statistical band) of one output in the
    control region, both normalised, the K-S distance and p-value in the legend; below, data
    over MC with the statistical uncertainties of both."""
    edges = np.linspace(0, 1, 26)
    centres, half = (edges[1:] + edges[:-1]) / 2, np.diff(edges) / 2
    mc, mc_err = normalised_histogram(values[~is_data], weights[~is_data], edges)
    data, data_err = normalised_histogram(values[is_data], weights[is_data], edges)
    fig, (ax, rax) = plt.subplots(
        2,
        1,
        figsize=(6.5, 6.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
        layout="constrained",
    )
    ax.stairs(mc, edges, fill=True, alpha=0.4, label="MC")
    band = {"fill": True, "hatch": "///", "alpha": 0.3, "color": "grey"}
    ax.stairs(mc + mc_err, edges, baseline=mc - mc_err, label="MC stat. unc.", **band)
    marker = {"fmt": "o", "color": "black", "ms": 4}
    ax.errorbar(centres, data, yerr=data_err, xerr=half, label="data", **marker)
    ax.plot([], [], " ", label=f"K-S D = {ks['ks']:.3f}, p = {ks['p_value']:.2g}")
    ax.set_ylabel("normalised")
    ax.set_ylim(0, 1.5 * max(np.nanmax(mc + mc_err, initial=0), np.nanmax(data, initial=0)) or 1)
    ax.tick_params(labelbottom=False)
    finish_axes(ax, "control region", {"loc": "upper right"})
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = data / mc
        ratio_err = np.hypot(data_err / mc, data * mc_err / mc**2)
    rax.errorbar(centres, ratio, yerr=ratio_err, xerr=half, **marker)
    rax.axhline(1.0, color="grey", ls="--")
    rax.set_ylim(*ratio_limits(ratio))
    rax.set_ylabel("data / MC", fontsize="x-small")
    rax.set_xlabel(label)
    save_figure(fig, output)


def training_panel(key: str) -> str | None:
    """The panel of the training plot an epoch record's ``key`` is drawn in (None: none):
    losses (every task's), accuracies, the adversary's losses, the data/MC K-S distances of
    the control region (not those per pt bin)."""
    if key in {"train_adv", "val_adv", "train_disc"}:
        return "adversary"
    if key in {"train_acc", "val_acc"}:
        return "accuracy"
    if key.startswith("val_ks_p") and key != "val_ks_pass" and "_pt" not in key:
        return "data/MC K-S (control)"
    if key.startswith(("train_", "val_")) and key.endswith(("_loss", "_ce")):
        return "loss"
    return None


def plot_training(
    epochs: list[dict[str, Any]],
    output: str | Path,
    best_epoch: int | None = None,
    monitor: str = "",
) -> None:
    """The training history per epoch (:func:`training_panel`), the best epoch (by
    ``monitor``) marked in every panel."""
    panels: dict[str, list[str]] = {"loss": [], "accuracy": []}
    for key in epochs[0] if epochs else []:
        if (panel := training_panel(key)) is not None:
            panels.setdefault(panel, []).append(key)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8), squeeze=False)
    x = [e["epoch"] for e in epochs]
    for ax, (title, names) in zip(axes[0], panels.items(), strict=True):
        for name in names:  # null (NaN or inf when written) is not drawn
            values = [np.nan if e.get(name) is None else e[name] for e in epochs]
            ax.plot(x, values, marker=".", label=name)
        if best_epoch is not None:
            by = f" ({monitor})" if monitor else ""
            ax.axvline(best_epoch, color="grey", ls=":", label=f"best epoch {best_epoch}{by}")
        ax.set_xlabel("epoch")
        finish_axes(ax, title, {"fontsize": "x-small"})
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
