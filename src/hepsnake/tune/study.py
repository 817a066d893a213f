"""Optuna studies shared by trial jobs: storage, sampler and pruner, one trial per job.

Each ``tune_trial`` job runs one trial in a process of its own (on HTCondor or SLURM a batch
job). The study lives in Optuna storage without a server: a journal file whose writers take
a lock by ``open(O_CREAT | O_EXCL)``, which works on AFS and EOS where ``flock`` does not,
or an RDB URL. A trial that fails is told FAIL and the job still succeeds; a job killed mid
trial leaves it RUNNING, and the rerun of that job (Snakemake reruns it: its output is
missing) marks it FAIL first, as it does any RUNNING trial of a dead process on this host.
"""

import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from hepsnake.config.contracts import Study, TuneContract, trial_contract
from hepsnake.config.typed import to_data
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.atomic import write_json
from hepsnake.paths import journal_path
from hepsnake.pause import pause_point
from hepsnake.tune.space import decode, suggest

log = logging.getLogger("hepsnake")

# what identifies a study's trials: a changed space, objective or base model is a new study
DEFINITION = ("base_model", "metric", "direction", "sampler", "seed", "pruner", "space", "model")


def study_name(study: Study) -> str:
    """The Optuna study name: ``<study>-<hash of its definition>``."""
    data = to_data(study)
    text = json.dumps({k: data[k] for k in DEFINITION}, sort_keys=True, default=str)
    return f"{study.name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def storage(study: Study) -> Any:
    """The study's Optuna storage: its RDB URL, or the journal file with an open-lock."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if study.storage:
        return optuna.storages.RDBStorage(study.storage)
    path = journal_path(study.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.storages.JournalStorage(backend)


def open_study(study: Study, seed_offset: int = 0) -> Any:
    """The Optuna study (created by the first job), its sampler seeded ``seed + seed_offset``
    (parallel jobs must not draw the same start-up points)."""
    import optuna

    seed = study.seed + seed_offset
    sampler = (
        optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if study.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    max_epochs = study.model.training.max_epochs
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(max_resource=max_epochs),
        "none": optuna.pruners.NopPruner,
    }[study.pruner]()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage(study),
        study_name=study_name(study),
        direction=study.direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale(study: Any, job: int) -> list[int]:
    """Mark FAIL the RUNNING trials no process works on: job ``job``'s earlier attempt (this
    job is its rerun) and those of dead processes on this host. Returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        dead = attrs.get("host") == host and not process_alive(int(attrs.get("pid", -1)))
        if attrs.get("job") == job or dead:
            study.tell(trial.number, state=TrialState.FAIL)
            stale.append(trial.number)
    for number in stale:
        log.warning("trial %d: its job ended without finishing it: recorded as FAIL", number)
    return stale


def objective(summary: dict[str, Any], metric: str, direction: str) -> float:
    """The best epoch's ``metric`` of a training summary (min or max by ``direction``)."""
    values = [e[metric] for e in summary["epochs"] if metric in e]
    if not values:
        logged = sorted({k for e in summary["epochs"] for k in e})
        raise HepsnakeError("metric", f"'{metric}' was not logged (logged: {', '.join(logged)})")
    return min(values) if direction == "minimize" else max(values)


def trial_record(trial: Any, study: Study, job: int) -> dict[str, Any]:
    """The JSON of a finished trial (``trials/<job>.json``)."""
    return {
        "study": study.name,
        "job": job,
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "params": decode(study.space, trial.params),
        "error": trial.user_attrs.get("error"),
    }


def run_trial(
    contract: TuneContract,
    job: int,
    paths: dict[str, str],
    outdir: str,
    output: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Run trial job ``job`` of the contract's study: ask a trial,
    train its model in ``outdir`` (``paths``: train, val, norm, class_dict, control_*), tell
    the best epoch's metric (PRUNED or FAIL as it ended), write its record to ``output``."""
    from optuna.trial import TrialState

    from hepsnake.training.run import train
    from hepsnake.tune.callbacks import Pruning

    study_cfg = contract.study
    study = open_study(study_cfg, seed_offset=job)
    fail_stale(study, job)
    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("job") == job and t.user_attrs.get("ended")
    ]
    if done:  # told, but killed before its record was written
        record = trial_record(done[-1], study_cfg, job) | {"outdir": str(Path(outdir))}
        write_json(output, record)
        return record
    trial = study.ask()
    for key, value in {"job": job, "pid": os.getpid(), "host": socket.gethostname()}.items():
        trial.set_user_attr(key, value)
    pause_point("tune.trial_started")  # tests: the trial is RUNNING with its pid recorded
    where = f"{study_cfg.name}: trial {trial.number}"
    params = suggest(trial, study_cfg.space)
    log.info("%s: %s", where, params)
    pruning = Pruning(trial, study_cfg.metric)
    control = {s: paths[f"control_{s}"] for s in ("train", "val") if f"control_{s}" in paths}
    try:
        run_contract = trial_contract(contract, job, params, where)
        summary = train(
            run_contract,
            paths["train"],
            paths["val"],
            paths["norm"],
            paths["class_dict"],
            outdir,
            threads,
            control or None,
            extra_callbacks=[pruning],
        )
        value = objective(summary, study_cfg.metric, study_cfg.direction)
    except Exception as exc:  # recorded: one failing trial must not stop the study
        log.error("%s failed: %s", where, first_line(exc))
        trial.set_user_attr("error", first_line(exc))
        trial.set_user_attr("ended", True)
        frozen = study.tell(trial, state=TrialState.FAIL)
    else:
        trial.set_user_attr("ended", True)
        if pruning.pruned_at is not None:
            log.info("%s pruned after epoch %d", where, pruning.pruned_at)
            frozen = study.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = study.tell(trial, value)
    record = trial_record(frozen, study_cfg, job) | {"outdir": str(Path(outdir))}
    write_json(output, record)
    return record
