"""The ``evaluate`` stage: metrics and plots of one model → ``results/metrics/{model}.json``:
each task scores itself (:meth:`~hepsnake.models.tasks.base.Task.score`); the numeric helpers
of the jet classification's scoring live in :mod:`hepsnake.evaluate.metrics`."""

from pathlib import Path
from typing import Any

from hepsnake.config.contracts import EvaluateContract
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate import plots
from hepsnake.io.atomic import write_json
from hepsnake.io.figure import use_style
from hepsnake.io.files import TRAINING_METRICS_KIND, open_h5, read_json
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.models.tasks import build_tasks
from hepsnake.models.tasks.base import Context, Scoring
from hepsnake.paths import TASK_PLOTS, plot_file

PREDICTIONS = "predictions file"  # what the file is called in errors


def score_tasks(
    contract: EvaluateContract, predictions: str, plot_dir: str | Path
) -> dict[str, Any]:
    """Every task's :meth:`~hepsnake.models.tasks.base.Task.score` of the contract's model's
    predictions (plots drawn into ``plot_dir``): the headline task's figures at the top level,
    each task's entry under ``tasks``.

    The contract holds the classes, ``evaluate``, the model's scanned ``parameters`` (names
    and training values) and its ``tasks``.
    """
    model = contract.model
    tasks = build_tasks(contract.tasks, Context(list(contract.class_names)))
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
    use_style(contract.evaluate.plot_style)
    out = Path(plot_dir)
    (out / TASK_PLOTS).mkdir(parents=True, exist_ok=True)  # a directory output, if empty
    run = Scoring(model, predictions, tables, unit, out, contract.evaluate, contract.parameters)
    metrics: dict[str, Any] = {"model": model, "energy_unit": unit, "tasks": {}}
    for task in tasks:
        scored = task.score(run)
        metrics |= scored.model
        metrics["tasks"][task.name] = scored.task
    return metrics


def evaluate(
    contract: EvaluateContract,
    predictions: str,
    training_metrics: str,
    output: str,
    plot_dir: str,
) -> dict[str, Any]:
    """Compute every metric of the contract's model on its test predictions
    (:func:`score_tasks`), draw its plots and its training history's, write JSON."""
    metrics = score_tasks(contract, predictions, plot_dir)
    history_keys = ["epochs", "best_epoch", "monitor", "train_seconds"]
    history = read_json(training_metrics, TRAINING_METRICS_KIND, history_keys)
    plots.plot_training(
        history["epochs"],
        plot_file(plot_dir, "training"),
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
