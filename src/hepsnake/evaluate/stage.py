"""The ``evaluate`` stage: metrics and plots of one model → ``results/metrics/{model}.json``."""

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from hepsnake.errors import HepsnakeError
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import (
    INCLUSIVE,
    RocBook,
    Values,
    auc,
    control_ks,
    curves,
    discriminant_setup,
    discriminant_text,
    model_metrics,
    roc_book,
    roc_points,
    signal_mask,
    stored_curves,
    working_points,
)
from hepsnake.io.atomic import write_json
from hepsnake.io.figure import use_style
from hepsnake.io.files import TRAINING_METRICS, open_h5, read_json
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.names import prob_column


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


def physical_weights(jets: np.ndarray, setting: bool | None) -> tuple[bool, str]:
    """Whether the jets' ``weight`` makes S/√B a yield ratio, and why not: ``setting`` true or
    false decides; null (auto) says no when the weights are absent, all 1, or any negative."""
    if setting is False:
        return False, "evaluate.physical_weights is false"
    if "weight" not in jets.dtype.names:
        return False, "the jets have no weight field"
    weights = jets["weight"]
    if setting:
        return True, ""
    negative = int(np.sum(weights < 0))
    if negative:
        return False, f"{negative} test jets have negative weights"
    if np.all(weights == 1):
        return False, "every weight is 1 (unweighted jets)"
    return True, ""


def constant_output(jets: np.ndarray, model: str, class_names: list[str]) -> dict[str, float]:
    """The largest share of test jets with one identical output vector, and its signal-class
    probability (e.g. every jet without constituents scored alike)."""
    outputs = np.stack([jets[prob_column(model, c)] for c in class_names], axis=1)
    if not len(outputs):
        return {"fraction": 0.0}
    values, counts = np.unique(outputs, axis=0, return_counts=True)
    top = int(np.argmax(counts))
    return {"fraction": float(counts[top] / len(outputs)), "outputs": values[top].tolist()}


def pt_panels(pt: np.ndarray, edges: list[float], unit: str) -> dict[str, np.ndarray]:
    """Jet masks of each pt bin [lo, hi), labelled with ``unit``."""
    return {
        f"{lo:g} ≤ pt < {hi:g} {unit}": (pt >= lo) & (pt < hi)
        for lo, hi in itertools.pairwise(edges)
    }


def binned_auc(
    score: np.ndarray, weights: np.ndarray, is_sig: np.ndarray, panels: dict[str, np.ndarray]
) -> list[float | None]:
    """Inclusive AUC in each panel (None where it has no signal or no background)."""
    out: list[float | None] = []
    for sel in panels.values():
        sig, bkg = is_sig & sel, (weights > 0) & sel
        out.append(auc(score[sig], score[bkg], weights[bkg]) if sig.any() and bkg.any() else None)
    return out


def binned_efficiency(
    score: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    signal: str,
    is_sig: np.ndarray,
    panels: dict[str, np.ndarray],
    wp: float,
) -> dict[str, Any]:
    """Per panel (pt bin), at the inclusive cut keeping ``wp`` of the signal: the signal
    efficiency and each background class's rejection, with binomial uncertainties (None where
    a bin has no such jet; rejection None where none passes), as puma's efficiency-vs-pt."""
    cut = float(np.quantile(score[is_sig], 1 - wp))
    out: dict[str, Any] = {"working_point": wp, "cut": cut, "signal": [], "rejection": {}}
    for sel in panels.values():
        n = int(np.sum(is_sig & sel))
        eff = float(np.mean(score[is_sig & sel] > cut)) if n else None
        err = float(np.sqrt(eff * (1 - eff) / n)) if n else None
        out["signal"].append({"efficiency": eff, "uncertainty": err})
    backgrounds = [c for i, c in enumerate(class_names) if c != signal and np.any(labels == i)]
    for b in backgrounds:
        is_b = labels == class_names.index(b)
        rows = []
        for sel in panels.values():
            n = int(np.sum(is_b & sel))
            eps = float(np.mean(score[is_b & sel] > cut)) if n else 0.0
            rej = 1 / eps if eps > 0 else None
            err = rej * np.sqrt((1 - eps) / (eps * n)) if rej is not None else None
            rows.append({"rejection": rej, "uncertainty": err})
        out["rejection"][b] = rows
    return out


def parameter_scan(
    jets: np.ndarray,
    book: RocBook,
    names: list[str],
    signal: str,
    is_sig: np.ndarray,
    wp: float,
) -> tuple[dict[str, Any], dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Each parameter point's signal efficiency at the background efficiency that working
    point ``wp`` has on the inclusive ROC (signal ``is_sig``), and each point's ROC curves; a
    parameterised model is scored at each point (:func:`roc_sets`)."""
    score, mixed = book.inclusive[book.model][INCLUSIVE]
    bkg = mixed > 0
    fpr, tpr = roc_points(score[is_sig], score[bkg], mixed[bkg])
    eps_b = float(np.interp(wp, tpr, fpr))
    point_curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    efficiency: dict[str, dict[str, float]] = {}
    for (par, value), sets in book.points.items():
        at = signal_mask(jets, names, signal, point=(par, value))
        for label, rocs in sets.items():
            point_curves[f"{label} {par}={value:g}"] = curves(rocs, at)
        score = sets[book.model][INCLUSIVE][0]
        fpr, tpr = roc_points(score[at], score[bkg], mixed[bkg])
        efficiency.setdefault(par, {})[f"{value:g}"] = float(np.interp(eps_b, fpr, tpr))
    entry = {"working_point": wp, "background_efficiency": eps_b, "efficiency": efficiency}
    return entry, point_curves


def trained_values(train: Values) -> str:
    """`` at mS ∈ {5, 16, 55}`` for the training values of each parameter ('' without)."""
    parts = [f"{n} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for n, vs in train.items() if vs]
    return f" at {', '.join(parts)}" if parts else ""


PREDICTIONS = "predictions file"  # what the file is called in errors
TASK_PLOTS = "tasks"  # the folder of the other tasks' plots, in the model's plot folder


def task_metrics(
    config: dict[str, Any],
    model: str,
    predictions: str,
    headline: dict[str, Any],
    plot_dir: Path,
    unit: str,
) -> dict[str, dict[str, Any]]:
    """Per task name its headline figures: the jet classification's inclusive AUC (and
    Bayes-optimal AUC where the truth is known), and what each other task scores (its plots,
    ``plots``, drawn into ``plot_dir/tasks``)."""
    from hepsnake.models import registry
    from hepsnake.models.tasks.base import Context

    context = Context(list(config["class_names"]))
    blocks = config.get("tasks") or [{"type": "jet_classification"}]
    tasks = [registry.build("task", b, context=context) for b in blocks]
    keys = ("auc", "bayes_auc", "auc_gap")
    out = {}
    with open_h5(predictions, PREDICTIONS, ["jets"]) as h5:
        jets = h5["jets"][:] if len(tasks) > 1 else None
        for task in tasks:
            if task.output_key == "logits":
                out[task.name] = {k: headline[k] for k in keys if k in headline}
                continue
            if task.dataset not in h5:
                raise HepsnakeError(
                    predictions, f"no dataset '{task.dataset}' for task {task.name}"
                )
            table = h5[task.dataset][:]
            out[task.name] = task.evaluate(table, model, jets)
            directory = plot_dir / TASK_PLOTS
            directory.mkdir(parents=True, exist_ok=True)
            drawn = task.plot(table, model, directory, unit, jets)
            out[task.name]["plots"] = [f"{TASK_PLOTS}/{name}" for name in drawn]
    return out


def evaluate(
    config: dict[str, Any],
    model: str,
    predictions: str,
    training_metrics: str,
    output: str,
    plot_dir: str,
) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions, draw its plots, write JSON.

    ``config`` holds ``class_names``, ``evaluate``, the model's ``parameters`` (names and
    training values, :func:`hepsnake.config.scan_parameters`) and its ``tasks``. Inclusive
    signal means the signal at the training values throughout (ROC, distributions, S/√B, pt
    bins); each value enters the per-parameter ROCs and efficiencies. Reference taggers are
    scored on the same jets.
    """
    ev = config["evaluate"]
    names, signal = config["class_names"], ev["signal"]
    wording = ev.get("signal_label") or signal
    scan = config.get("parameters") or {"names": [], "train": {}}
    with open_h5(predictions, PREDICTIONS, ["jets"]) as h5:
        jets = h5["jets"][:]
        unit = str(h5["jets"].attrs.get("energy_unit", DEFAULT_UNIT))
        control = h5["control_jets"][:] if "control_jets" in h5 else None
    missing = [c for c in names if prob_column(model, c) not in (jets.dtype.names or ())]
    if missing:
        raise HepsnakeError(
            predictions,
            f"not a {PREDICTIONS} of model '{model}': no column '{prob_column(model, missing[0])}'",
        )
    use_style(ev.get("plot_style"))
    setup = discriminant_setup(ev, names)
    wps = working_points(ev, setup)
    references = ev.get("reference_taggers") or {}
    book = roc_book(
        jets, model, names, signal, setup.fractions, scan["names"], setup.shared, references
    )
    formula = discriminant_text(signal, book.fractions)
    metrics: dict[str, Any] = {
        "model": model,
        "discriminant": {"type": setup.kind, "formula": formula},
        "energy_unit": unit,
    }
    metrics |= model_metrics(jets, book, names, signal, wps, scan["train"])
    out = Path(plot_dir)
    labels = jets["flavour_label"]
    is_sig = signal_mask(jets, names, signal, scan["train"])
    roc_curves = {label: curves(rocs, is_sig) for label, rocs in book.inclusive.items()}
    roc_curves |= {name: curves(rocs, is_sig) for name, rocs in book.references.items()}
    reference = ev.get("ratio_reference") or next(iter(references), None)
    if reference not in roc_curves:  # another model: its ratio is in the report's comparison
        reference = None
    title = f"signal: {wording}{trained_values(scan['train'])}; {formula}"
    plots.plot_roc(roc_curves, out / "roc.png", title, wording, reference)
    metrics["roc_curves"] = stored_curves(roc_curves)  # the report's comparison plot

    score, mixed = book.inclusive[model][INCLUSIVE]
    keep = is_sig | (labels != names.index(signal))
    plots.plot_outputs(score, labels, names, {"all test jets": keep}, out / "outputs.png", formula)
    if ev["pt_bins"]:
        if "pt" not in jets.dtype.names:
            raise HepsnakeError(predictions, "no jet field 'pt' (set evaluate.pt_bins: null)")
        panels = {k: keep & v for k, v in pt_panels(jets["pt"], ev["pt_bins"], unit).items()}
        plots.plot_outputs(score, labels, names, panels, out / "outputs_pt.png", formula)
        edges = ev["pt_bins"]
        inside = (jets["pt"] >= edges[0]) & (jets["pt"] < edges[-1])
        metrics["pt_bins"] = {
            "edges": edges,
            "unit": unit,
            "inclusive_auc": binned_auc(score, mixed, is_sig, panels),
            "fraction_inside": float(inside.mean()) if len(jets) else 0.0,
        }
        wp = wps[len(wps) // 2]
        per_bin = binned_efficiency(score, labels, names, signal, is_sig, panels, wp)
        metrics["pt_bins"]["at_working_point"] = per_bin
        plots.plot_pt_efficiency(edges, unit, per_bin, wording, out / "efficiency_pt.png")

    weights = jets["weight"].astype(np.float64) if "weight" in jets.dtype.names else None
    physical, why_not = physical_weights(jets, ev.get("physical_weights"))
    negative = int(np.sum(weights < 0)) if weights is not None else 0
    metrics["weights"] = {"physical": physical, "negative": negative, "note": why_not}
    if physical and weights is not None:
        cuts, significance = sb_scan(score[keep], is_sig[keep], weights[keep])
        plots.plot_sb_scan(cuts, significance, out / "sb_scan.png")
        best = int(np.nanargmax(significance))
        metrics["sb_scan"] = {
            "best_cut": float(cuts[best]),
            "max_significance": float(significance[best]),
        }
    elif ev.get("physical_weights") is not False:  # the rule declared the plot
        plots.plot_note(f"S/√B omitted: {why_not}", out / "sb_scan.png")
    metrics["constant_output"] = constant_output(jets, model, names)

    if book.points:
        wp = wps[len(wps) // 2]
        metrics["parameter_efficiency"], point_curves = parameter_scan(
            jets, book, names, signal, is_sig, wp
        )
        plots.plot_roc(
            point_curves, out / "roc_param.png", f"signal {wording} per parameter value", wording
        )
        eff = metrics["parameter_efficiency"]
        plots.plot_param_efficiency(
            eff["efficiency"], wp, eff["background_efficiency"], out / "param_efficiency.png"
        )

    if control is not None:
        metrics["control_ks"] = control_ks(control, model, names)
        column = prob_column(model, signal)
        plots.plot_control(
            control[column],
            control["is_data"].astype(bool),
            control["train_weight"].astype(np.float64),
            metrics["control_ks"][signal],
            column,
            out / "control.png",
        )

    metrics["tasks"] = task_metrics(config, model, predictions, metrics[INCLUSIVE], out, unit)
    history = read_json(
        training_metrics, TRAINING_METRICS, ["epochs", "best_epoch", "monitor", "train_seconds"]
    )
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
