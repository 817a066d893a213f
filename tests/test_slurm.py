"""The workflow on a real one-node SLURM cluster (tests/cluster/slurm-up.sh), through
``--profile profiles/slurm`` as a user runs it: real ``sbatch`` jobs, accounting by slurmdbd
(the plugin's ``sacct`` status checks), a job SLURM kills for its time limit, the retry.

Where no cluster is reachable the test skips (``HEPSNAKE_REQUIRE_CLUSTER=1``, set by
``.ci/run``, makes that a failure).
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cluster_unavailable

from hepsnake import pause

SAMPLES = {
    "qcd": {"process": "qcd", "n_jets": 1500},
    "bib": {"process": "bib", "n_jets": 800},
    "sig_mS16": {"process": "sig", "mS": 16, "n_jets": 800},
}
# the data stages of the tiny DAG: convert (one part per sample: one toy file), gather, split,
# norm
TARGET = "results/prepared/norm_dict.yaml"
CONFIG = ["--configfile", "config/tiny.yaml", "config/mini.yaml"]
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def slurm() -> None:
    """A SLURM cluster with accounting: controller up, a node idle, ``sacct`` answering."""
    how = "as root: tests/cluster/slurm-up.sh"
    if not shutil.which("sbatch"):
        cluster_unavailable("no SLURM client (sbatch) on this machine", how)
    try:
        if "UP" not in sh("scontrol", "ping") or not sh("sinfo", "-h", "-o", "%T").strip():
            cluster_unavailable("the SLURM controller answers but has no node", how)
        sh("sacct", "-n", "-X", "-j", "1")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        cluster_unavailable(f"no SLURM cluster with accounting ({exc})", how)


def workdir(root: Path) -> Path:
    """A working directory with config/ and the 3-sample overlay config/mini.yaml."""
    shutil.copytree(REPO / "config", root / "config")
    rows = (REPO / "config" / "samples.tsv").read_text().splitlines()
    keep = [r for r in rows if r.split("\t")[0] in ("name", *SAMPLES)]
    (root / "config" / "mini_samples.tsv").write_text("\n".join(keep) + "\n")
    mini = {"samples": "config/mini_samples.tsv", "simulate": {"samples": SAMPLES}}
    (root / "config" / "mini.yaml").write_text(yaml.safe_dump(mini))
    return root


def snakemake(work: Path, *args: str) -> list[str]:
    exe = shutil.which("snakemake")
    assert exe, "snakemake is installed"
    return [exe, "-s", str(REPO / "Snakefile"), "-d", str(work), *args]


def outputs(results: Path) -> dict[str, bytes]:
    """The deterministic outputs: converted parts (with their statuses), gathered samples and
    summaries, prepared splits and dicts."""
    files = [*results.glob("h5/*"), *results.glob("h5/*/part-*"), *results.glob("prepared/*")]
    return {str(p.relative_to(results)): p.read_bytes() for p in files if p.is_file()}


def slurm_job_id(pid: int) -> str:
    """The SLURM job a process runs in (its environment, readable by root)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"SLURM_JOB_ID="))


def wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} still runs after {timeout_s:g} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_slurm_run_equals_local_retries_a_killed_job_with_more_memory(slurm, tmp_path):
    local, cluster = workdir(tmp_path / "local"), workdir(tmp_path / "cluster")
    toys = [f"results/toy/{name}.root" for name in SAMPLES]
    run = subprocess.run(
        snakemake(local, "--cores", "2", *toys, *CONFIG), cwd=local, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    shutil.copytree(local / "results" / "toy", cluster / "results" / "toy")

    # every convert job waits at convert.file_opened; the first there is killed by SLURM
    points = tmp_path / "pause"
    points.mkdir()
    env = {**pause.environment(points, "convert.file_opened")}
    profile = ["--profile", str(REPO / "profiles" / "slurm")]
    fast = ["--slurm-init-seconds-before-status-checks", "1"]
    cmd = ["timeout", "900", *snakemake(cluster, *profile, *fast, TARGET, *CONFIG)]
    proc = subprocess.Popen(
        cmd,
        cwd=cluster,
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid = pause.wait_reached(points, "convert.file_opened", timeout_s=300)
    killed = slurm_job_id(pid)
    sh("scontrol", "update", f"JobId={killed}", "TimeLimit=1")  # minutes; SLURM kills it
    # the local reference run meanwhile (no pause point in its environment)
    run = subprocess.run(
        snakemake(local, "--cores", "1", TARGET, *CONFIG), cwd=local, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    wait_gone(pid, 240)
    pause.release(points, "convert.file_opened")
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-5000:]

    assert outputs(cluster / "results") == outputs(local / "results")
    jobs = [(job, Path(log)) for job, log in SUBMITTED.findall(output)]
    # the plugin's log folder of a job: its wildcards joined by "_" (sample, part)
    folder = next(log.parent.name for job, log in jobs if job == killed)
    sample, part = folder.rsplit("_", 1)
    attempts = [job for job, log in jobs if log.parts[-3:-1] == ("rule_convert", folder)]
    assert attempts[0] == killed and len(attempts) == 2, jobs
    accounting = sh("sacct", "-n", "-X", "-P", "-o", "JobID,State,ReqMem", "-j", ",".join(attempts))
    assert accounting.split() == [f"{killed}|TIMEOUT|4000M", f"{attempts[1]}|COMPLETED|8000M"]
    # the kill is reported with the rule, both logs and SLURM's state; SLURM's own line is in
    # the SLURM log named there
    report = output[output.index("Error in rule convert:") :].split("Trying to restart job")[0]
    assert f"SLURM-job '{killed}' failed, SLURM status is: 'TIMEOUT'" in report
    slurm_log = next(log for job, log in jobs if job == killed)
    assert f"log: results/logs/convert/{sample}/part-{part}.log, {slurm_log} " in report
    assert f"JOB {killed} ON " in slurm_log.read_text()
    assert " DUE TO TIME LIMIT ***" in slurm_log.read_text()
