"""Hyperparameter studies: the tune file checks, and the tiny study run as Snakemake jobs with a
trial killed mid-run, resumed, and its best trial trained, reported and tracked."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO, snakemake

from hepsnake.config import MODEL_SCHEMA, check_schema, schema_validator, workflow_config
from hepsnake.config.loading import apply_params
from hepsnake.errors import HepsnakeError
from hepsnake.pause import environment, release, wait_reached

TRIALS = 4


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"training.lr": {"type": "float", "low": 1, "high": 0.1}}}, "low is above high"),
        (
            {"space": {"training.lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "a log range needs low > 0",
        ),
        ({"space": {"training.max_epoch": {"type": "int", "low": 1, "high": 2}}}, "max_epoch"),
        ({"space": {"model.dim": {"type": "int", "low": 0, "high": 8}}}, "less than the minimum"),
        ({"pruner": "hyperbnd"}, "'hyperbnd' is not one of"),
        ({"base_model": "nosuch"}, "model config for 'nosuch' not found"),
    ],
)
def test_bad_tune_file_names_the_file_and_key(workdir, monkeypatch, change, message):
    monkeypatch.chdir(workdir)
    spec = yaml.safe_load((REPO / "config" / "tune" / "tiny.yaml").read_text()) | change
    write(workdir / "bad_tune.yaml", spec)
    over = write(
        workdir / "over.yaml",
        {"extends": "config/tiny.yaml", "tune": {"tiny": {"file": "bad_tune.yaml"}}},
    )
    config = yaml.safe_load(over.read_text())
    with pytest.raises(HepsnakeError) as error:
        workflow_config(config, [over])
    assert str(error.value).startswith("bad_tune.yaml: ")
    assert message in str(error.value)


def test_storage_url_with_a_password_is_refused(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    over = write(
        workdir / "over.yaml",
        {
            "extends": "config/tiny.yaml",
            "tune": {
                "tiny": {"file": "config/tune/tiny.yaml", "storage": "postgresql://u:pw@db/x"}
            },
        },
    )
    with pytest.raises(HepsnakeError, match="tune/tiny/storage: embeds a password"):
        workflow_config(yaml.safe_load(over.read_text()), [over])


def test_dotted_keys_set_nested_values_and_keep_blocks():
    model = {"model": {"head": {"hidden": [8]}}, "training": {"lr": 1.0}, "adversarial": None}
    out = apply_params(model, {"training.lr": 0.5, "model.encoder.layers": 2}, "here")
    assert out["training"]["lr"] == 0.5 and out["model"]["encoder"] == {"layers": 2}
    assert model["training"]["lr"] == 1.0, "the base model is not changed"
    with pytest.raises(HepsnakeError, match="no 'adversarial' block"):
        apply_params(model, {"adversarial.lambda": 2.0}, "here")


def study_of(workdir: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(
            str(workdir / "results" / "tune" / "tiny" / "journal.log")
        )
    )
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def kill_first_running_trial(workdir: Path, pauses: Path) -> optuna.trial.FrozenTrial:
    """SIGKILL the process of a trial waiting at pause point ``tune.trial_started`` (RUNNING,
    its pid recorded), then let the other trials go on; the killed trial."""
    pid = wait_reached(pauses, "tune.trial_started")
    os.kill(pid, signal.SIGKILL)
    release(pauses, "tune.trial_started")
    (trial,) = [t for t in study_of(workdir).trials if t.user_attrs.get("pid") == pid]
    return trial


MINI_SAMPLES = ("qcd", "bib", "sig_mS16")  # the toy's three classes: fewer jobs before trials


@pytest.mark.slow
def test_study_survives_a_killed_trial_resumes_and_its_best_trains(workdir):
    rows = (REPO / "config" / "samples.tsv").read_text().splitlines()
    keep = [r for r in rows if r.split("\t")[0] in ("name", *MINI_SAMPLES)]
    (workdir / "config" / "mini_samples.tsv").write_text("\n".join(keep) + "\n")
    over = write(
        workdir / "over.yaml",
        {
            "extends": "config/tiny.yaml",
            "samples": "config/mini_samples.tsv",
            "tracking": {"mlflow": {"uri": "results/mlruns"}},
        },
    )
    target = ["results/tune/tiny/best.yaml"]
    args = [shutil.which("snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    args += ["--cores", "2", "--keep-going", *target, "--configfile", str(over)]
    pauses = workdir / "pauses"
    pauses.mkdir()
    env = os.environ | environment(pauses, "tune.trial_started")
    proc = subprocess.Popen(
        args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    killed = kill_first_running_trial(workdir, pauses)
    output = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode != 0, "the killed trial's job failed"
    trials = workdir / "results" / "tune" / "tiny" / "trials"
    job = killed.user_attrs["job"]
    assert not (trials / f"{job}.json").exists()
    # the other chain of trials went on (n_parallel 2: trial i waits for trial i - 2)
    assert (trials / f"{1 - job % 2}.json").is_file(), output[-3000:]

    snakemake(workdir, "--cores", "2", *target, "--configfile", str(over))
    study = study_of(workdir)
    states = {t.number: t.state for t in study.trials}
    assert states[killed.number] == optuna.trial.TrialState.FAIL, "the killed trial is recorded"
    assert len(study.trials) == TRIALS + 1, "the study resumed: one new trial for the killed job"
    ended = [t for t in study.trials if t.number != killed.number]
    assert sorted(t.user_attrs["job"] for t in ended) == list(range(TRIALS))
    assert all(t.state.is_finished() and t.state.name != "FAIL" for t in ended)
    records = [json.loads((trials / f"{i}.json").read_text()) for i in range(TRIALS)]
    assert {r["number"] for r in records} == {t.number for t in ended}

    results = workdir / "results"
    summary = json.loads((results / "tune" / "tiny" / "study.json").read_text())
    complete = [t for t in ended if t.state.name == "COMPLETE"]
    assert summary["best"] == min(t.value for t in complete)
    assert summary["best_trial"] == study.best_trial.number
    best = yaml.safe_load((results / "tune" / "tiny" / "best.yaml").read_text())
    check_schema(best, schema_validator(MODEL_SCHEMA), lambda *p: "best.yaml")
    assert best["model"]["head"]["hidden"] == summary["best_params"]["model.head.hidden"]
    assert best["training"]["lr"] == pytest.approx(summary["best_params"]["training.lr"])
    for plot in ("history", "importances"):
        assert (results / "tune" / "tiny" / f"{plot}.png").stat().st_size > 1000

    # MLflow: the study a run, each trial a child run with its params and epochs
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlruns' / 'mlflow.db'}")
    parent = summary["mlflow"]["run_id"]
    children = client.search_runs(
        [summary["mlflow"]["experiment_id"]], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(children) == TRIALS + 1
    best_run = client.get_run(summary["mlflow"]["trial_runs"][str(study.best_trial.number)])
    assert float(best_run.data.params["training.lr"]) == pytest.approx(best["training"]["lr"])
    assert len(client.get_metric_history(best_run.info.run_id, "val_loss")) == 2
    assert {a.path for a in client.list_artifacts(parent)} >= {"best.yaml", "history.png"}

    # models: [tune.tiny] trains, evaluates, exports and reports the best trial
    tuned = write(workdir / "tuned.yaml", {"extends": str(over), "models": ["tune.tiny"]})
    snakemake(workdir, "--cores", "2", "--configfile", str(tuned))
    trained = yaml.safe_load((results / "models" / "tune.tiny" / "config.yaml").read_text())
    assert trained["model"]["training"]["lr"] == best["training"]["lr"]
    assert (results / "export" / "tune.tiny" / "model.onnx").is_file()
    text = (results / "report.md").read_text()
    assert "## Tuning study `tiny`" in text and "![tiny history](tune/tiny/history.png)" in text
    assert "## Best epochs" in text and "| tune.tiny |" in text
    runs = json.loads((results / "tracking" / "runs.json").read_text())["runs"]
    files = {a.path for a in client.list_artifacts(runs["tune.tiny"], "export")}
    assert "export/model.onnx" in files


def test_tuned_model_before_its_study_says_how_to_make_it(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    over = write(workdir / "over.yaml", {"extends": "config/tiny.yaml", "models": ["tune.tiny"]})
    with pytest.raises(HepsnakeError) as error:
        workflow_config(yaml.safe_load(over.read_text()), [over])
    assert str(error.value) == (
        "results/tune/tiny/best.yaml: model config for 'tune.tiny' not found"
        " (`snakemake results/tune/tiny/best.yaml` makes it)"
    )


def test_failing_trial_is_recorded_and_its_job_succeeds(workdir, monkeypatch):
    from hepsnake.config import contract
    from hepsnake.tune.study import open_study, run_trial

    monkeypatch.chdir(workdir)
    config = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text())
    resolved = workflow_config(config, [workdir / "config" / "tiny.yaml"])
    part = contract(resolved, "tune", study="tiny")
    missing = {k: str(workdir / f"{k}.h5") for k in ("train", "val", "norm", "class_dict")}
    out = workdir / "results" / "tune" / "tiny" / "trials" / "0.json"
    record = run_trial(part, 0, missing, str(out.with_suffix("")), str(out))
    assert record["state"] == "FAIL" and "norm.h5" in record["error"]
    assert json.loads(out.read_text())["state"] == "FAIL"
    (trial,) = open_study(part.study).trials
    assert trial.state.name == "FAIL" and trial.user_attrs["job"] == 0
    # the job's rerun reuses the ended trial instead of starting another
    assert run_trial(part, 0, missing, str(out.with_suffix("")), str(out))["number"] == 0
    assert len(open_study(part.study).trials) == 1
