"""The batch profiles: installed so `--profile NAME` works as typed; HTCondor submissions recorded.

No HTCondor pool exists here. The real executor plugin, ``htcondor2.Submit`` and
``htcondor2.JobEventLog`` run; only ``htcondor2.Schedd`` is replaced by the recorder in
``htcondor_recorder.py``, which runs each job locally and writes its job-event-log entries.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
import yaml
from conftest import REPO

RECORDER = Path(__file__).with_name("htcondor_recorder.py")
MINI = {
    "samples": "config/mini_samples.tsv",
    "models": ["baseline"],
    "simulate": {
        "samples": {
            "qcd": {"process": "qcd", "n_jets": 1500},
            "qcd_b": {"process": "qcd", "n_jets": 700},
            "bib": {"process": "bib", "n_jets": 800},
            "sig_mS16": {"process": "sig", "mS": 16, "n_jets": 800},
        }
    },
    "convert": {"files_per_job": 1},  # qcd, two files, is converted in two parts
}
PARTS = {("qcd", "00000"), ("qcd", "00001"), ("bib", "00000"), ("sig_mS16", "00000")}


def hepsnake(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = shutil.which("hepsnake")
    assert exe, "the hepsnake console script is installed"
    return subprocess.run(
        [exe, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose Snakemake user config directory is empty and private."""
    return os.environ | {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with the repository's config/ and a 3-sample (4-file), 1-model
    override."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "config", work / "config")
    rows = (REPO / "config" / "samples.tsv").read_text().splitlines()
    keep = [r for r in rows if r.split("\t")[0] in ("name", *MINI["simulate"]["samples"])]
    keep = [
        r.replace("results/toy/qcd.root", "results/toy/qcd.root,results/toy/qcd_b.root")
        for r in keep
    ]
    (work / "config" / "mini_samples.tsv").write_text("\n".join(keep) + "\n")
    (work / "config" / "mini.yaml").write_text(yaml.safe_dump(MINI))
    return work


def dry_run(profile: str, workdir: Path, env: dict[str, str]) -> str:
    """The output of ``snakemake --profile PROFILE -n`` run in ``workdir``."""
    proc = subprocess.run(
        ["snakemake", "-s", str(REPO / "Snakefile"), "--profile", profile, "-n"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def train_resources(dry_run_output: str, rule: str = "train") -> set[str]:
    """The ``key=value`` resources the dry run lists for the first job of ``rule``."""
    job = dry_run_output.split(f"\nrule {rule}:", 1)[1]
    line = next(x for x in job.splitlines() if x.strip().startswith("resources:"))
    return {r.strip() for r in line.split(":", 1)[1].split(",")}


def test_install_profile_makes_profile_name_work(home, workdir):
    proc = hepsnake("install-profile", "htcondor", env=home)
    assert proc.returncode == 0, proc.stderr
    installed = Path(home["XDG_CONFIG_HOME"]) / "snakemake" / "htcondor" / "config.yaml"
    assert installed.read_text() == (REPO / "profiles" / "htcondor" / "config.yaml").read_text()
    # idempotent; a different installed copy is kept unless --force
    assert hepsnake("install-profile", "htcondor", env=home).returncode == 0
    installed.write_text(installed.read_text() + "jobs: 5\n")
    proc = hepsnake("install-profile", "htcondor", env=home)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("a different profile is there; --force replaces it")
    assert "jobs: 5" in installed.read_text()
    assert hepsnake("install-profile", "htcondor", "--force", env=home).returncode == 0
    assert "jobs: 5" not in installed.read_text()
    # `--profile htcondor` as typed, from a directory without ./htcondor
    dry = dry_run("htcondor", workdir, home)
    assert "Using profiles htcondor and workflow specific profile" in dry
    assert {"request_gpus=1", "classad_JobFlavour=tomorrow"} <= train_resources(dry)


@pytest.mark.parametrize("profile", ["htcondor", "slurm"])
def test_tuning_trials_get_the_train_resources(home, workdir, profile):
    args = ["-s", str(REPO / "Snakefile"), "--profile", f"{REPO}/profiles/{profile}", "-n"]
    proc = subprocess.run(
        ["snakemake", *args, "results/tune/tiny/best.yaml", "--configfile", "config/tiny.yaml"],
        cwd=workdir,
        env=home,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dry = proc.stdout + proc.stderr
    trial = train_resources(dry, "tune_trial")
    gpu = {"request_gpus=1", "classad_JobFlavour=tomorrow"} if profile == "htcondor" else set()
    assert gpu | ({"gres=gpu:1", "slurm_partition=gpu"} if profile == "slurm" else set()) <= trial
    profile_cfg = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    assert profile_cfg["set-resources"]["tune_trial"] == profile_cfg["set-resources"]["train"]


def test_slurm_profile_resolves_gpu_partition(home, workdir):
    assert hepsnake("install-profile", "slurm", env=home).returncode == 0
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["set-resources"]["train"]["gres"] == "gpu:1"
    dry = dry_run("slurm", workdir, home)
    assert {"slurm_partition=gpu", "gres=gpu:1"} <= train_resources(dry)


def test_no_storage_plugin_in_the_install():
    """With a storage plugin installed the htcondor plugin prefixes jobs with a pip install."""
    names = {d.metadata["Name"].lower() for d in distributions()}
    assert "snakemake-executor-plugin-htcondor" in names
    assert not [n for n in names if n.startswith("snakemake-storage-plugin")]


def test_default_profile_sets_no_resources():
    """profiles/default overrides a global profile key by key: resources there would win."""
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert not {"executor", "default-resources", "set-resources", "resources"} & set(default)


def run_recorded(workdir: Path, env: dict[str, str], target: str, **fail: str):
    record = workdir / "submitted.jsonl"
    env = (
        env | {"RECORDER_FILE": str(record)} | {f"RECORDER_{k.upper()}": v for k, v in fail.items()}
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(RECORDER),
            "-s",
            str(REPO / "Snakefile"),
            "--profile",
            "htcondor",
            "--seconds-between-status-checks",
            "1",
            "--configfile",
            "config/tiny.yaml",
            "config/mini.yaml",
            "--",
            target,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = record.read_text().splitlines() if record.exists() else []
    return proc, [json.loads(line) for line in lines]


@pytest.mark.slow
def test_htcondor_submissions_gpu_flavour_and_retry(home, workdir):
    assert hepsnake("install-profile", "htcondor", env=home).returncode == 0
    env = home | {"AWS_SECRET_ACCESS_KEY": "recorder-secret-7f3a"}
    proc, records = run_recorded(
        workdir,
        env,
        "results/models/baseline/best.ckpt",
        fail_once="convert",
        hold_once="prepare_splits",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert (workdir / "results" / "models" / "baseline" / "best.ckpt").is_file()
    by_rule: dict[str, list[dict]] = {}
    for rec in records:
        by_rule.setdefault(rec["submit"]["batch_name"].rsplit("-", 1)[0], []).append(rec["submit"])
    assert set(by_rule) == {"simulate", "convert", "prepare_splits", "prepare_norm", "train"}
    # held for memory on its first attempt: resubmitted at once, asking for twice the memory
    assert [s["request_memory"] for s in by_rule["prepare_splits"]] == ["8000MB", "16000MB"]
    assert "is held: Error from slot1_1@127.0.0.1: Job has gone over cgroup memory" in output
    (train,) = by_rule["train"]
    assert train["request_gpus"] == "1"
    assert train["MY.JobFlavour"] == '"tomorrow"'
    assert train["request_memory"] == "16000MB"
    assert train["request_disk"] == str(10000 * 1024), "KB"
    for submit in by_rule["simulate"]:
        assert submit["MY.JobFlavour"] == '"microcentury"'
        assert "request_gpus" not in submit
    assert by_rule["prepare_norm"][0]["MY.JobFlavour"] == '"microcentury"'
    assert "recorder-secret-7f3a" not in json.dumps(records), "secrets stay out of ClassAds"
    for submit in (s for subs in by_rule.values() for s in subs):
        assert "pip install" not in submit["arguments"], "no storage-plugin pip prefix"
        assert submit["getenv"].startswith("PATH,"), "only listed variables are copied"
        assert submit["request_cpus"].isdigit()
    # one convert job per part (the gathers run locally), each failed once on its "node", was
    # reported, resubmitted (with more memory) and succeeded
    parts = [re.search(r"sample=(\w+),part=(\d+)", s["arguments"]) for s in by_rule["convert"]]
    assert sorted(m.groups() for m in parts if m) == sorted([*PARTS, *PARTS])
    assert len(by_rule["convert"]) == 2 * len(PARTS)
    memory = sorted(s["request_memory"] for s in by_rule["convert"])
    assert memory == ["4000MB"] * len(PARTS) + ["8000MB"] * len(PARTS), "more on the retry"
    assert "Error in rule convert" in output
    assert "completed but failed with ExitCode 1" in output
    assert "Trying to restart job" in output
    events = (workdir / ".snakemake" / "htcondor" / "snakemake-rules.log").read_text()
    assert events.count("Job terminated.") == len(records) - 1, "the held job never ended"


@pytest.mark.slow
def test_htcondor_tuning_trials_submitted_as_train_jobs(home, workdir):
    assert hepsnake("install-profile", "htcondor", env=home).returncode == 0
    proc, records = run_recorded(workdir, home, "results/tune/tiny/best.yaml")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (workdir / "results" / "tune" / "tiny" / "best.yaml").is_file()
    by_rule: dict[str, list[dict]] = {}
    for rec in records:
        by_rule.setdefault(rec["submit"]["batch_name"].rsplit("-", 1)[0], []).append(rec["submit"])
    trials = by_rule["tune_trial"]
    assert len(trials) == 4, "one job per trial"
    for submit in trials:
        assert submit["request_gpus"] == "1"
        assert submit["MY.JobFlavour"] == '"tomorrow"'
        assert submit["request_memory"] == "16000MB"
        assert submit["request_disk"] == str(10000 * 1024), "KB"
    (best,) = by_rule["tune_best"]
    assert "request_gpus" not in best and best["MY.JobFlavour"] == '"espresso"'


@pytest.mark.slow
def test_htcondor_job_failing_every_attempt_fails_the_run(home, workdir):
    assert hepsnake("install-profile", "htcondor", env=home).returncode == 0
    proc, records = run_recorded(workdir, home, "results/toy/qcd.root", fail_always="simulate")
    assert proc.returncode != 0
    assert len(records) == 3, "one submission plus retries: 2"
    output = proc.stdout + proc.stderr
    assert "Error in rule simulate" in output
    assert "stored in .snakemake/htcondor/snakemake-rules.log" in output
    errors = list((workdir / ".snakemake" / "htcondor" / "simulate").glob("simulate-*.err"))
    assert len(errors) == 3 and "execute-node failure" in errors[0].read_text()
    assert not (workdir / "results" / "toy" / "qcd.root").exists()


# Run as sitecustomize: this Python process behaves as if one executor plugin were not
# installed (Snakemake finds plugins by listing the installed modules, then imports them).
HIDE_PLUGIN = """
import os, pkgutil, sys
hidden = os.environ["HIDE_PLUGIN"]
sys.modules[hidden] = None
_iter_modules = pkgutil.iter_modules
pkgutil.iter_modules = lambda *a, **k: (m for m in _iter_modules(*a, **k) if m.name != hidden)
"""


@pytest.mark.parametrize("profile", ["slurm", "htcondor"])
def test_missing_executor_plugin_is_one_line(home, workdir, tmp_path, profile):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_PLUGIN)
    env = home | {"PYTHONPATH": str(hide), "HIDE_PLUGIN": f"snakemake_executor_plugin_{profile}"}
    args = ["-s", str(REPO / "Snakefile"), "--profile", f"{REPO}/profiles/{profile}", "-n"]
    proc = subprocess.run(
        ["snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [
        f"hepsnake: error: profile {profile}: the Snakemake executor plugin "
        f"snakemake-executor-plugin-{profile} is not installed: pip install 'hepsnake[{profile}]' "
        f"(in a checkout: pip install -e '.[{profile}]')"
    ], proc.stderr
    assert "usage:" not in proc.stderr and "invalid choice" not in proc.stderr
    # with the plugin the same command line passes the check
    env.pop("HIDE_PLUGIN")
    (hide / "sitecustomize.py").unlink()
    dry_run(f"{REPO}/profiles/{profile}", workdir, env)
