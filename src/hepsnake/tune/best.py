"""The ``tune_best`` stage: the best trial as a model config, the study's table and plots,
and (with ``tracking.mlflow``) the study as an MLflow run with one child run per trial."""

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hepsnake.config.contracts import Distribution, Mlflow, StudyContract
from hepsnake.config.loading import best_model_file
from hepsnake.config.typed import to_data
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_json, write_yaml
from hepsnake.io.files import TRAINING_METRICS_KIND, read_json
from hepsnake.tune.space import decode
from hepsnake.tune.study import open_study, study_name

log = logging.getLogger("hepsnake")


def trial_rows(
    study: Any, space: Mapping[str, Distribution], records: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per trial: number, job, state, value, params, seconds, its training dir."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        job = trial.user_attrs.get("job")
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        rows.append(
            {
                "number": trial.number,
                "job": job,
                "state": trial.state.name,
                "value": trial.value,
                "params": decode(space, trial.params),
                "seconds": seconds,
                "error": trial.user_attrs.get("error"),
                # the job's record names its training dir only for the trial it ended with
                "outdir": (records.get(job) or {}).get("outdir")
                if (records.get(job) or {}).get("number") == trial.number
                else None,
            }
        )
    return rows


def study_plots(study: Any, history: str, importances: str) -> None:
    """Optuna's optimisation history and parameter importances (matplotlib backend)."""
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ov
    from optuna.exceptions import ExperimentalWarning

    from hepsnake.io.figure import save_figure

    def save(ax: Any, path: str) -> None:
        ax.figure.set_size_inches(8, 4.5)
        ax.figure.tight_layout()  # the dotted parameter names fit on the left
        save_figure(ax.figure, path)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        save(ov.plot_optimization_history(study), history)
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if len(complete) >= 2 and study.best_trial.params:
            save(ov.plot_param_importances(study), importances)
            return
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "parameter importances need 2 completed trials", ha="center")
    save_figure(fig, importances)


def track_study(
    settings: Mlflow, summary: dict[str, Any], rows: list[dict[str, Any]], files: list[str]
) -> dict[str, Any]:
    """The study (its ``summary``) as an MLflow run (best params, value; ``files`` as
    artefacts) with a child run per trial (its params, per-epoch training metrics, state and
    value)."""
    from hepsnake.tracking import experiment, log_run

    client, experiment_id = experiment(settings)
    best = next(r for r in rows if r["number"] == summary["best_trial"])
    parent = log_run(
        client,
        experiment_id,
        f"tune.{summary['name']}",
        {"study": {k: summary[k] for k in ("base_model", "metric", "direction", "sampler")}}
        | {"best": best["params"]},
        [{"epoch": 0, f"best_{summary['metric']}": summary["best"]}],
        [(f, "") for f in files],
        tags={"hepsnake.study": summary["name"]},
    )
    children = {}
    for row in rows:
        metrics = Path(row["outdir"] or "", "metrics.json")
        epochs = []
        if row["outdir"]:
            epochs = read_json(metrics, TRAINING_METRICS_KIND, ["epochs"])["epochs"]
        children[row["number"]] = log_run(
            client,
            experiment_id,
            f"tune.{summary['name']}-trial{row['number']}",
            row["params"],
            epochs,
            tags={"hepsnake.state": row["state"], "hepsnake.value": str(row["value"])},
            parent=parent,
        )
    return {"experiment_id": experiment_id, "run_id": parent, "trial_runs": children}


def tune_best(
    contract: StudyContract,
    trials: list[str],
    best_output: str,
    summary_output: str,
    history_plot: str,
    importance_plot: str,
) -> dict[str, Any]:
    """Write the best trial's model config (the base model's file with its parameters: a
    ``models:`` entry ``tune.<study>``), the study summary JSON and its two plots."""
    from optuna.trial import TrialState

    cfg = contract.study
    study = open_study(cfg)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)  # every trial job has ended
    records = {r["job"]: r for r in (read_json(p, "trial record", ["job"]) for p in trials)}
    rows = trial_rows(study, cfg.space, records)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    if not complete:
        states = ", ".join(f"{r['number']}: {r['state']}" for r in rows)
        raise HepsnakeError(summary_output, f"no trial of study '{cfg.name}' completed ({states})")
    best = study.best_trial
    params = decode(cfg.space, best.params)
    where = f"{cfg.name}: trial {best.number}"
    description = (
        f"{cfg.base_model} tuned by study {cfg.name}: trial {best.number},"
        f" {cfg.metric} {best.value:.6g} ({', '.join(f'{k}={v}' for k, v in params.items())})"
    )
    model = best_model_file(to_data(contract.base_model_file), params, description, where)
    study_plots(study, history_plot, importance_plot)
    write_yaml(best_output, model)
    summary = {
        "name": cfg.name,
        "optuna_study": study_name(cfg),
        "base_model": cfg.base_model,
        "metric": cfg.metric,
        "direction": cfg.direction,
        "sampler": cfg.sampler,
        "pruner": cfg.pruner,
        "n_trials": contract.n_trials,
        "best": best.value,
        "best_trial": best.number,
        "best_params": params,
        "trials": rows,
        "plots": {"history": history_plot, "importances": importance_plot},
    }
    mlflow = contract.mlflow
    if mlflow is not None:
        files = [best_output, history_plot, importance_plot]
        summary["mlflow"] = track_study(mlflow, summary, rows, files)
    write_json(summary_output, summary)
    return summary
