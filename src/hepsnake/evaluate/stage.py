"""The ``evaluate`` stage: metrics and plots of one model → ``results/metrics/{model}.json``."""

import itertools
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake.config import MASS
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import (
    INCLUSIVE,
    RocBook,
    auc,
    control_ks,
    curves,
    model_metrics,
    roc_book,
    roc_points,
    signal_mask,
)
from hepsnake.io.atomic import write_json


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


def pt_panels(pt: np.ndarray, edges: list[float]) -> dict[str, np.ndarray]:
    """Jet masks of each pt bin [lo, hi), labelled."""
    return {f"{lo:g} ≤ pt < {hi:g}": (pt >= lo) & (pt < hi) for lo, hi in itertools.pairwise(edges)}


def binned_auc(
    score: np.ndarray, weights: np.ndarray, is_sig: np.ndarray, panels: dict[str, np.ndarray]
) -> list[float | None]:
    """Inclusive AUC in each panel (None where it has no signal or no background)."""
    out: list[float | None] = []
    for sel in panels.values():
        sig, bkg = is_sig & sel, (weights > 0) & sel
        out.append(auc(score[sig], score[bkg], weights[bkg]) if sig.any() and bkg.any() else None)
    return out


def mass_scan(
    jets: np.ndarray,
    book: RocBook,
    names: list[str],
    signal: str,
    is_sig: np.ndarray,
    wp: float,
) -> tuple[dict[str, Any], dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Each mass's signal efficiency at the background efficiency that working point ``wp``
    has on the inclusive ROC (signal ``is_sig``), and each mass's ROC curves; a
    parameterised model is scored at each mass (:func:`roc_sets`)."""
    score, mixed = book.inclusive[book.model][INCLUSIVE]
    bkg = mixed > 0
    fpr, tpr = roc_points(score[is_sig], score[bkg], mixed[bkg])
    eps_b = float(np.interp(wp, tpr, fpr))
    mass_curves, efficiency = {}, {}
    for m, sets in book.masses.items():
        at_mass = signal_mask(jets, names, signal, mass=m)
        for label, rocs in sets.items():
            mass_curves[f"{label} {MASS}={m:g}"] = curves(rocs, at_mass)
        score = sets[book.model][INCLUSIVE][0]
        fpr, tpr = roc_points(score[at_mass], score[bkg], mixed[bkg])
        efficiency[f"{m:g}"] = float(np.interp(eps_b, fpr, tpr))
    entry = {"working_point": wp, "background_efficiency": eps_b, "efficiency": efficiency}
    return entry, mass_curves


def evaluate(
    config: dict[str, Any],
    model: str,
    predictions: str,
    training_metrics: str,
    output: str,
    plot_dir: str,
) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions, draw its plots, write JSON.

    Inclusive signal means the training masses' signal throughout (ROC, distributions, S/√B,
    pt bins); each mass enters the per-mass ROCs and the mass efficiency.
    """
    ev = config["evaluate"]
    names, signal = config["class_names"], ev["signal"]
    with h5py.File(predictions, "r") as h5:
        jets = h5["jets"][:]
        control = h5["control_jets"][:] if "control_jets" in h5 else None
    train_masses = config.get("simulate", {}).get("masses", {}).get("train")
    book = roc_book(jets, model, names, signal, ev["fractions"])
    metrics: dict[str, Any] = {"model": model}
    metrics |= model_metrics(jets, book, names, signal, ev["working_points"], train_masses)
    fractions = book.fractions
    out = Path(plot_dir)
    labels = jets["label"]
    is_sig = signal_mask(jets, names, signal, train_masses)
    sets = book.inclusive
    mix = ", ".join(f"{b} {f:.2f}" for b, f in fractions.items())
    title = f"signal: {signal} (training masses); background fractions: {mix}"
    plots.plot_roc(
        {label: curves(rocs, is_sig) for label, rocs in sets.items()}, out / "roc.png", title
    )

    score, mixed = sets[model][INCLUSIVE]
    keep = is_sig | (labels != names.index(signal))
    plots.plot_outputs(
        score, labels, names, {"all jets (signal: training masses)": keep}, out / "outputs.png"
    )
    if ev["pt_bins"]:
        if "pt" not in jets.dtype.names:
            raise HepsnakeError(predictions, "no jet field 'pt' (set evaluate.pt_bins: null)")
        panels = {k: keep & v for k, v in pt_panels(jets["pt"], ev["pt_bins"]).items()}
        plots.plot_outputs(score, labels, names, panels, out / "outputs_pt.png")
        metrics["pt_bins"] = {
            "edges": ev["pt_bins"],
            "inclusive_auc": binned_auc(score, mixed, is_sig, panels),
        }

    weights = jets["weight"].astype(np.float64)
    cuts, significance = sb_scan(score[keep], is_sig[keep], weights[keep])
    plots.plot_sb_scan(cuts, significance, out / "sb_scan.png")
    best = int(np.nanargmax(significance))
    metrics["sb_scan"] = {
        "best_cut": float(cuts[best]),
        "max_significance": float(significance[best]),
    }

    masses = list(book.masses)
    if masses:
        wp = ev["working_points"][len(ev["working_points"]) // 2]
        metrics["mass_efficiency"], mass_curves = mass_scan(jets, book, names, signal, is_sig, wp)
        plots.plot_roc(mass_curves, out / "roc_mass.png", f"signal {signal} per mass")
        eff = metrics["mass_efficiency"]
        plots.plot_mass_efficiency(
            masses,
            list(eff["efficiency"].values()),
            wp,
            eff["background_efficiency"],
            out / "mass_efficiency.png",
        )

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
