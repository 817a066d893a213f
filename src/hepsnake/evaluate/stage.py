"""The ``evaluate`` stage: metrics and plots of one model → ``results/metrics/{model}.json``:
each task scores itself (:meth:`~hepsnake.models.tasks.base.Task.score`); the numeric helpers
of the jet classification's scoring live here."""

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
    curves,
    physics_weights,
    signal_mask,
    signal_weights,
)
from hepsnake.io.atomic import write_json
from hepsnake.io.figure import use_style
from hepsnake.io.files import TRAINING_METRICS, open_h5, read_json
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.models.tasks import build_tasks
from hepsnake.models.tasks.base import Context, Scoring
from hepsnake.names import prob_column
from hepsnake.roc import auc, roc
from hepsnake.stats import effective_count, efficiency_error, rejection_error


def sb_scan(
    score: np.ndarray, is_sig: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, S/√B) with (signed) weighted yields above each cut; the background yield is
    floored at that of one jet of mean |weight|, so S/√B stays finite."""
    cuts = np.quantile(score, np.linspace(0.0, 0.995, 200))
    order = np.argsort(score)
    s_cum = np.cumsum((weights * is_sig)[order][::-1])[::-1]
    b_cum = np.cumsum((weights * ~is_sig)[order][::-1])[::-1]
    index = np.searchsorted(score[order], cuts, side="left")
    s, b = s_cum[index], b_cum[index]
    floor = np.abs(weights[~is_sig]).mean() if np.any(~is_sig) else 1.0
    return cuts, s / np.sqrt(np.maximum(b, floor if floor > 0 else 1.0))


def physical_weights(jets: np.ndarray, setting: bool | None) -> tuple[bool, str]:
    """Whether the jets' ``weight`` makes S/√B a yield ratio, and why not: ``setting`` true or
    false decides; null (auto) says no when the weights are absent or all 1. Negative weights
    (NLO generators) are physical: yields are signed sums."""
    if setting is False:
        return False, "evaluate.physical_weights is false"
    if "weight" not in jets.dtype.names:
        return False, "the jets have no weight field"
    weights = jets["weight"]
    if setting:
        return True, ""
    if np.all(weights == 1):
        return False, "every weight is 1 (unweighted jets)"
    return True, ""


ROC_JETS = "jets: each test jet counts once, the background classes mixed by the fractions"


def roc_jet_weights(
    jets: np.ndarray, class_names: list[str], setting: str
) -> tuple[np.ndarray | None, str]:
    """The weight of every jet in the ROCs (None: each counts once) and what they are, as
    ``evaluate.roc_weights`` asks: ``jets``, or ``physical``: the signed physics weights, or
    their |w| where a class's do not sum to a positive number."""
    if setting == "jets":
        return None, ROC_JETS
    labels = jets["flavour_label"]
    groups = {c: labels == i for i, c in enumerate(class_names)}
    weights, used = physics_weights(jets, groups, "config: evaluate/roc_weights")
    return weights, f"{used}, the background classes mixed by the fractions"


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
    score: np.ndarray,
    weights: np.ndarray,
    is_sig: np.ndarray,
    panels: dict[str, np.ndarray],
    jet_weights: np.ndarray | None = None,
) -> list[float | None]:
    """Inclusive AUC in each panel (None where it has no signal or no background); the
    background jets weigh ``weights``, the signal jets ``jet_weights`` (None: 1)."""
    out: list[float | None] = []
    for sel in panels.values():
        sig, bkg = is_sig & sel, (weights != 0) & sel
        ws = signal_weights(sig, jet_weights)
        out.append(
            auc(score[sig], score[bkg], ws, weights[bkg]) if sig.any() and bkg.any() else None
        )
    return out


def variable_panels(values: np.ndarray, edges: list[float]) -> list[np.ndarray]:
    """Jet masks of each bin [lo, hi) of ``values``."""
    return [(values >= lo) & (values < hi) for lo, hi in itertools.pairwise(edges)]


def weighted_cut(score: np.ndarray, weights: np.ndarray, keep: float) -> float:
    """The score cut above which the share ``keep`` of the (weighted) jets lie."""
    order = np.argsort(score)[::-1]
    share = np.cumsum(weights[order]) / weights.sum()
    return float(score[order][min(int(np.argmax(share >= keep)), len(score) - 1)])


def pass_rate(score: np.ndarray, weights: np.ndarray, cut: float) -> tuple[float, float] | None:
    """(weighted share of the jets above ``cut``, their effective number); None without jets
    (or with weights summing to 0)."""
    total = float(weights.sum())
    if not len(score) or total == 0:
        return None
    return float(weights[score > cut].sum() / total), effective_count(weights)


def efficiency_entry(rate: tuple[float, float] | None) -> dict[str, float | None]:
    """A signal efficiency and its binomial uncertainty (None without jets)."""
    if rate is None:
        return {"efficiency": None, "uncertainty": None}
    return {"efficiency": rate[0], "uncertainty": float(efficiency_error(*rate))}


def rejection_entry(rate: tuple[float, float] | None) -> dict[str, float | None]:
    """A background rejection and its binomial uncertainty (None without jets or where no jet
    passes)."""
    if rate is None or rate[0] <= 0:
        return {"rejection": None, "uncertainty": None}
    rejection = 1 / rate[0]
    return {"rejection": rejection, "uncertainty": float(rejection_error(rejection, rate[1]))}


def binned_efficiency(
    score: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    signal: str,
    is_sig: np.ndarray,
    panels: list[np.ndarray],
    wp: float,
    weights: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """Per bin (``panels``), as puma's efficiency-vs-variable plots: ``at_working_point``, at
    the inclusive cut keeping ``wp`` of the signal, the signal efficiency and each background
    class's rejection; ``at_bin_efficiency``, with the cut set in each bin to keep ``wp`` of
    its signal, each background's rejection. Jets count with their ``weights`` (signed);
    uncertainties are binomial on the bin's effective number of jets (Σw)²/Σw² (None where a
    bin has no such jet; a rejection None where none passes)."""
    backgrounds = [c for i, c in enumerate(class_names) if c != signal and np.any(labels == i)]
    is_bkg = {b: labels == class_names.index(b) for b in backgrounds}
    cut = weighted_cut(score[is_sig], weights[is_sig], wp)
    cuts = [
        weighted_cut(score[is_sig & sel], weights[is_sig & sel], wp)
        if np.any(is_sig & sel)
        else None
        for sel in panels
    ]

    def rejections(bin_cuts: list[float | None]) -> dict[str, list[dict[str, float | None]]]:
        return {
            b: [
                rejection_entry(
                    None if c is None else pass_rate(score[m & sel], weights[m & sel], c)
                )
                for sel, c in zip(panels, bin_cuts, strict=True)
            ]
            for b, m in is_bkg.items()
        }

    signal_rows = [
        efficiency_entry(pass_rate(score[is_sig & sel], weights[is_sig & sel], cut))
        for sel in panels
    ]
    return {
        "at_working_point": {
            "working_point": wp,
            "cut": cut,
            "signal": signal_rows,
            "rejection": rejections([cut] * len(panels)),
        },
        "at_bin_efficiency": {"working_point": wp, "cuts": cuts, "rejection": rejections(cuts)},
    }


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
    bkg = mixed != 0
    inclusive = roc(score[is_sig], score[bkg], signal_weights(is_sig, book.jet_weights), mixed[bkg])
    eps_b = float(np.interp(wp, inclusive.tpr, inclusive.fpr))
    point_curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    efficiency: dict[str, dict[str, float]] = {}
    for (par, value), sets in book.points.items():
        at = signal_mask(jets, names, signal, point=(par, value))
        for label, rocs in sets.items():
            point_curves[f"{label} {par}={value:g}"] = curves(rocs, at, book.jet_weights)
        score = sets[book.model][INCLUSIVE][0]
        point = roc(score[at], score[bkg], signal_weights(at, book.jet_weights), mixed[bkg])
        efficiency.setdefault(par, {})[f"{value:g}"] = float(np.interp(eps_b, point.fpr, point.tpr))
    entry = {"working_point": wp, "background_efficiency": eps_b, "efficiency": efficiency}
    return entry, point_curves


def trained_values(train: Values) -> str:
    """`` at mS ∈ {5, 16, 55}`` for the training values of each parameter ('' without)."""
    parts = [f"{n} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for n, vs in train.items() if vs]
    return f" at {', '.join(parts)}" if parts else ""


PREDICTIONS = "predictions file"  # what the file is called in errors


def score_tasks(
    config: dict[str, Any], model: str, predictions: str, plot_dir: str | Path
) -> dict[str, Any]:
    """Every task's :meth:`~hepsnake.models.tasks.base.Task.score` of ``model``'s predictions
    (plots drawn into ``plot_dir``): the headline task's figures at the top level, each task's
    entry under ``tasks``.

    ``config`` holds ``class_names``, ``evaluate``, the model's ``parameters`` (names and
    training values, :func:`hepsnake.config.scan_parameters`) and its ``tasks``.
    """
    tasks = build_tasks(config.get("tasks"), Context(list(config["class_names"])))
    with open_h5(predictions, PREDICTIONS, ["jets"]) as h5:
        for task in tasks:
            if task.dataset not in h5:
                raise HepsnakeError(
                    predictions, f"no dataset '{task.dataset}' for task {task.name}"
                )
        wanted = dict.fromkeys(["jets", "control_jets", *(t.dataset for t in tasks)])
        tables = {name: h5[name][:] for name in wanted if name in h5}
        unit = str(h5["jets"].attrs.get("energy_unit", DEFAULT_UNIT))
    for task in tasks:
        fields = tables[task.dataset].dtype.names or ()
        missing = [f for f in task.predict_names(model) if f not in fields]
        if missing:
            raise HepsnakeError(
                predictions, f"not a {PREDICTIONS} of model '{model}': no column '{missing[0]}'"
            )
    use_style(config["evaluate"].get("plot_style"))
    run = Scoring(
        model,
        predictions,
        tables,
        unit,
        Path(plot_dir),
        config["evaluate"],
        config.get("parameters") or {"names": [], "train": {}},
    )
    metrics: dict[str, Any] = {"model": model, "energy_unit": unit, "tasks": {}}
    for task in tasks:
        scored = task.score(run)
        metrics |= scored.model
        metrics["tasks"][task.name] = scored.task
    return metrics


def evaluate(
    config: dict[str, Any],
    model: str,
    predictions: str,
    training_metrics: str,
    output: str,
    plot_dir: str,
) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions (:func:`score_tasks`), draw its
    plots and its training history's, write JSON."""
    metrics = score_tasks(config, model, predictions, plot_dir)
    history = read_json(
        training_metrics, TRAINING_METRICS, ["epochs", "best_epoch", "monitor", "train_seconds"]
    )
    plots.plot_training(
        history["epochs"],
        Path(plot_dir) / "training.png",
        history["best_epoch"],
        history["monitor"],
    )
    metrics["training"] = {
        "best_epoch": history["best_epoch"],
        "epochs": len(history["epochs"]),
        "monitor": history["monitor"],
        "gate_fallback": history.get("gate_fallback", False),
        "train_seconds": history["train_seconds"],
    }
    write_json(output, metrics)
    return metrics
