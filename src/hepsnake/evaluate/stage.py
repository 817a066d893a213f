"""The ``evaluate`` stage: metrics and plots of one model → ``results/metrics/{model}.json``."""

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import control_ks, discriminant, model_metrics
from hepsnake.io.atomic import write_json

PLOTS = ("roc.png", "outputs.png", "sb_scan.png", "training.png")


def sb_scan(
    score: np.ndarray, is_sig: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, S/√B) with weighted yields above each cut (background yield floored at 1 jet)."""
    cuts = np.quantile(score, np.linspace(0.0, 0.995, 200))
    order = np.argsort(score)
    s_cum = np.cumsum((weights * is_sig)[order][::-1])[::-1]
    b_cum = np.cumsum((weights * ~is_sig)[order][::-1])[::-1]
    index = np.searchsorted(score[order], cuts, side="left")
    s, b = s_cum[index], b_cum[index]
    floor = weights[~is_sig].mean() if np.any(~is_sig) else 1.0
    return cuts, s / np.sqrt(np.maximum(b, floor))


def evaluate(
    config: dict[str, Any],
    model: str,
    predictions: str,
    training_metrics: str,
    output: str,
    plot_dir: str,
) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions, draw its plots, write JSON."""
    ev = config["evaluate"]
    names, signal = config["class_names"], ev["signal"]
    with h5py.File(predictions, "r") as h5:
        jets = h5["jets"][:]
        control = h5["control_jets"][:] if "control_jets" in h5 else None
    train_masses = config.get("simulate", {}).get("masses", {}).get("train")
    metrics: dict[str, Any] = {"model": model}
    metrics.update(model_metrics(jets, model, names, signal, ev["working_points"], train_masses))
    out = Path(plot_dir)
    probs = {c: jets[f"{model}_p{c}"].astype(np.float64) for c in names}
    labels = jets["label"]
    sig_idx = names.index(signal)
    is_sig = labels == sig_idx
    backgrounds = [c for i, c in enumerate(names) if i != sig_idx and np.any(labels == i)]
    fractions = {b: 1.0 / len(backgrounds) for b in backgrounds}
    score = discriminant(probs, signal, fractions)

    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {model: {}}
    truth = all(f"truth_logp_{c}" in jets.dtype.names for c in names)
    if truth:
        curves["Bayes-optimal"] = {}
    for b in backgrounds:
        is_b = labels == names.index(b)
        pair = discriminant(probs, signal, {b: 1.0})
        curves[model][b] = plots.rejection_curve(pair[is_sig], pair[is_b])
        if truth:
            bayes = jets[f"truth_logp_{signal}"] - jets[f"truth_logp_{b}"]
            curves["Bayes-optimal"][b] = plots.rejection_curve(bayes[is_sig], bayes[is_b])
    plots.plot_roc(curves, out / "roc.png")
    plots.plot_outputs(score, labels, names, out / "outputs.png")
    cuts, significance = sb_scan(score, is_sig, jets["weight"].astype(np.float64))
    plots.plot_sb_scan(cuts, significance, out / "sb_scan.png")
    best = int(np.nanargmax(significance))
    metrics["sb_scan"] = {
        "best_cut": float(cuts[best]),
        "max_significance": float(significance[best]),
    }

    if "mS" in jets.dtype.names and np.any(is_sig):
        wp = ev["working_points"][len(ev["working_points"]) // 2]
        cut = np.quantile(score[is_sig], 1 - wp)
        masses = sorted(float(m) for m in np.unique(jets["mS"][is_sig]))
        eff = [float(np.mean(score[is_sig & (jets["mS"] == m)] > cut)) for m in masses]
        metrics["mass_efficiency"] = {
            "working_point": wp,
            "efficiency": dict(zip([f"{m:g}" for m in masses], eff, strict=True)),
        }
        plots.plot_mass_efficiency(masses, eff, wp, out / "mass_efficiency.png")

    if control is not None:
        metrics["control_ks"] = control_ks(control, model, names)
        column = f"{model}_p{signal}"
        plots.plot_control(
            control[column],
            control["is_data"].astype(bool),
            control["train_weight"].astype(np.float64),
            metrics["control_ks"][signal],
            column,
            out / "control.png",
        )

    history = json.loads(Path(training_metrics).read_text())
    plots.plot_training(history["epochs"], out / "training.png")
    metrics["training"] = {
        "best_epoch": history["best_epoch"],
        "epochs": len(history["epochs"]),
        "monitor": history["monitor"],
        "gate_fallback": history.get("gate_fallback", False),
        "train_seconds": history["train_seconds"],
    }
    write_json(output, metrics)
    return metrics
