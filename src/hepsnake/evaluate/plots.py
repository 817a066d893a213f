"""Evaluation plots (matplotlib, Agg): ROC, output distributions, S/√B, control region, training."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from hepsnake.io.atomic import atomic_path


def save(fig: plt.Figure, output: str | Path) -> None:
    """Write ``fig`` as PNG atomically and close it."""
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def rejection_curve(sig: np.ndarray, bkg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signal efficiency, background rejection) along the score threshold."""
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(sig)), np.zeros(len(bkg))], np.r_[sig, bkg])
    keep = fpr > 0
    return tpr[keep], 1.0 / fpr[keep]


def plot_roc(
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], output: str | Path
) -> None:
    """One panel per background: rejection vs signal efficiency for each labelled curve."""
    backgrounds = list(next(iter(curves.values())))
    fig, axes = plt.subplots(
        1, len(backgrounds), figsize=(5.5 * len(backgrounds), 4.2), squeeze=False
    )
    for ax, bkg in zip(axes[0], backgrounds, strict=True):
        for label, per_bkg in curves.items():
            eff, rej = per_bkg[bkg]
            ax.plot(eff, rej, "--" if "Bayes" in label else "-", label=label)
        ax.set_yscale("log")
        ax.set_xlim(0.2, 1)
        ax.set_xlabel("signal efficiency")
        ax.set_ylabel(f"{bkg} rejection")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save(fig, output)


def plot_outputs(
    score: np.ndarray, labels: np.ndarray, class_names: list[str], output: str | Path
) -> None:
    """Distribution of the discriminant for each true class."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    edges = np.linspace(*np.quantile(score, [0.001, 0.999]), 50)
    for i, name in enumerate(class_names):
        if np.any(labels == i):
            ax.hist(score[labels == i], bins=edges, density=True, histtype="step", label=name)
    ax.set_xlabel("discriminant log(p_sig / p_bkg)")
    ax.set_ylabel("normalised")
    ax.legend()
    fig.tight_layout()
    save(fig, output)


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
    ax.legend()
    fig.tight_layout()
    save(fig, output)


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
    ax.set_title(f"K-S distance {ks['ks']:.3f}, p-value {ks['p_value']:.2g}")
    ax.legend()
    fig.tight_layout()
    save(fig, output)


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
            if name in keys:
                ax.plot(x, [e[name] for e in epochs], marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, output)


def plot_mass_efficiency(
    masses: list[float], efficiencies: list[float], wp: float, output: str | Path
) -> None:
    """Signal efficiency at the working-point cut (set on the inclusive signal) per mass."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(masses, efficiencies, marker="o")
    ax.set_xlabel("mS [GeV]")
    ax.set_ylabel(f"signal efficiency at the {wp:.0%} working point")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    save(fig, output)
