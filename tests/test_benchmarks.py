"""Every benchmark runs: each script's ``--smoke`` (and ``gpu.sh --dry-run``) as a subprocess
exits 0 and prints its figure lines, so a refactor that breaks a benchmark fails here. No
timing is asserted (the figures of a smoke run measure nothing). Those that run a Snakemake DAG,
or start a process per verb or per Snakemake run, are marked slow."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
NUMBER = r"[\d,]+(?:\.\d+)?"
VERBS = (
    *("simulate", "list-files", "convert", "gather", "split", "norm", "train"),
    *("predict", "evaluate", "export", "report"),
)

# id: (command from the repository root, a pattern per figure line it must print)
SMOKES: dict[str, tuple[list[str], list[str]]] = {
    "convert": (
        ["convert.py", "--smoke"],
        [
            rf"^ratio conversion/raw\s+{NUMBER}",
            rf"^conversion throughput\s+{NUMBER}",
            rf"^\s+2,000\s+{NUMBER}\s+{NUMBER}\s+-?{NUMBER}\s+{NUMBER}$",  # peak memory at N
        ],
    ),
    "loader": (
        ["loader.py", "--smoke"],
        [rf"^  H5Batches\s+{NUMBER} jets/s", rf"^  H5Batches / raw\s+{NUMBER}"],
    ),
    "prepare": (
        ["prepare.py", "--smoke"],
        [
            rf"^norm / raw throughput\s+{NUMBER}",
            rf"^split / raw throughput\s+{NUMBER}",
            rf"^peak RSS norm\s+6,000 jets\s+{NUMBER} MiB",
            rf"^peak RSS split\s+3,000 jets\s+{NUMBER} MiB",
        ],
    ),
    "prepare-split-memory": (
        ["prepare.py", "--smoke", "--split-memory", "3000,6000"],
        [rf"^split peak RSS slope -?{NUMBER} B/jet .* 100,000,000 jets: -?{NUMBER} GiB"],
    ),
    "train_step": (
        ["train_step.py", "--smoke", "--model", "baseline"],
        [
            rf"^  cpu 1 thread\(s\)\s+hepsnake\s+{NUMBER}\s+reference\s+{NUMBER} jets/s"
            rf"\s+ratio {NUMBER}\s+lightning\s+{NUMBER} \({NUMBER}\)$"
        ],
    ),
    "train_step-adversarial": (
        ["train_step.py", "--smoke", "--model", "adversarial"],
        [rf"^  cpu 1 thread\(s\): shared control forward\s+{NUMBER} jets/s.*: {NUMBER}x$"],
    ),
    "constituent_truth": (
        ["constituent_truth.py", "--smoke"],
        [
            rf"^tracks\s+llp\s+fraction {NUMBER}\s+Bayes AUC {NUMBER}",
            rf"^test clusters\s+llp\s+network AUC {NUMBER}\s+Bayes {NUMBER}\s+gap [+-]{NUMBER}",
        ],
    ),
    "tasks": (
        ["tasks.py", "--smoke"],
        [
            rf"multi-task: jet AUC \(sig vs QCD\) {NUMBER} ± {NUMBER}",
            rf"track_origin: auc {NUMBER}, bayes_auc {NUMBER}",
            rf"^jet AUC multi-task − single-task: [+-]{NUMBER} \(± {NUMBER} stat\.\)$",
        ],
    ),
    "int8": (
        ["int8.py", "--smoke"],
        [
            rf"^dyn s8w \(current\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+\d+\s+[+-]{NUMBER}",
            r"int8 variant with \|ΔAUC\| <= 0\.005",
            rf"^  all\s+2 thread\(s\): fp32\s+{NUMBER} jets/s, int8\s+{NUMBER} jets/s, ratio",
            rf"^fp32 MatMul/Gemm: {NUMBER} % of the kernel time",
        ],
    ),
}
# a Snakemake DAG, or a process per verb / per Snakemake run: minutes on a loaded machine
SLOW_SMOKES: dict[str, tuple[list[str], list[str]]] = {
    "startup": (
        ["startup.py", "--smoke"],
        [rf"^{verb}\s+{NUMBER} /\s*{NUMBER}\s+{NUMBER} /\s*{NUMBER}" for verb in VERBS],
    ),
    "dag": (
        ["dag.py", "--smoke"],
        [
            rf"^\s+1\s+\d+\s+{NUMBER} \(\s*{NUMBER}\)\s+{NUMBER} \(\s*{NUMBER}\)$",  # 1 sample
            r"no-op is toy \+",
        ],
    ),
    "dag-full-run": (
        ["dag.py", "--smoke", "--full-run"],
        [
            rf"^config/tiny\.yaml DAG, snakemake --cores 2: {NUMBER} s",
            rf"^train\s+\d+\s+{NUMBER}\s+{NUMBER}%$",  # the per-rule sums
            rf"^baseline vs qcd: AUC {NUMBER}, Bayes {NUMBER}, gap -?{NUMBER}",
            rf"^data/MC K-S of p_sig: baseline {NUMBER}, adversarial {NUMBER}",
        ],
    ),
    "example_dag": (
        ["example_dag.py", "--smoke"],
        [rf"^total wall {NUMBER} s", rf"^sum over the DAG's jobs, --help wall .*: {NUMBER} s"],
    ),
    "scale": (
        ["scale.py", "--smoke"],
        [
            rf"^ratio convert/raw\s+{NUMBER} \(target >= 0\.7",
            rf"^convert job peak RSS\s+{NUMBER}-{NUMBER} MiB over \[1, 2\] files per job",
            rf"^split/norm peak RSS\s+{NUMBER} MiB at {NUMBER} jets",
            r"^prepared datasets, gathered vs plain\s+identical$",
            rf"^dry run, 200 files, wall\s+{NUMBER} jobs: hepsnake {NUMBER} s, bare Snakemake",
            rf"^ratio dry run hepsnake/bare, wall\s+{NUMBER} \(target <= 1\.5",
            rf"^dry run, 200 files, cpu\s+{NUMBER} jobs: hepsnake {NUMBER} s, bare Snakemake",
            rf"^ratio dry run hepsnake/bare, cpu\s+{NUMBER} \(target <= 1\.5",
        ],
    ),
    "gpu.sh": (
        ["gpu.sh", "--dry-run"],
        [
            *(
                rf"^  cpu {variant}\s+hepsnake\s+{NUMBER}\s+reference\s+{NUMBER} jets/s"
                rf"\s+ratio {NUMBER}.*{NUMBER}x cpu$"
                for variant in ("fp32", "bf16", "compile", "compile-bf16")
            ),
            rf"^  tiny baseline, gpu\s+{NUMBER} jets/s",
            rf"^  gpu / cpu: {NUMBER}x$",
        ],
    ),
}


# scripts another run covers: tests/test_raw_config_reads.py runs raw_config_reads.py's smoke
# (a count, not a timing: no banner) and asserts it; gpu.sh --dry-run calls peers_gpu.py
# --dry-run; tests/test_peers.py runs peers.py --smoke (slow: it builds the peers' venvs)
RUN_ELSEWHERE = {
    "raw_config_reads.py": "tests/test_raw_config_reads.py",
    "peers_gpu.py": "gpu.sh --dry-run",
    "peers.py": "tests/test_peers.py::test_peers_smoke",
}


def run_smoke(command: list[str]) -> str:
    """Run ``benchmarks/<command>`` from the repository root; its stdout (fails on exit != 0)."""
    script = str(BENCHMARKS / command[0])
    interpreter = ["bash"] if script.endswith(".sh") else [sys.executable]
    proc = subprocess.run(
        [*interpreter, script, *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        # gpu.sh calls python and snakemake: this interpreter's, even from an inactive venv
        env=os.environ
        | {
            "OMP_WAIT_POLICY": "PASSIVE",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    what = " ".join(command)
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc.stdout


def check_figures(stdout: str, patterns: list[str]) -> None:
    """Every pattern matches a line of ``stdout``."""
    missing = [p for p in patterns if not re.search(p, stdout, re.MULTILINE)]
    assert not missing, f"figure lines missing: {missing}\n{stdout[-4000:]}"


def test_every_benchmark_has_a_smoke_run():
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")}
    scripts |= {p.name for p in BENCHMARKS.glob("*.sh")}
    covered = {command[0] for command, _ in (SMOKES | SLOW_SMOKES).values()}
    assert scripts == covered | set(RUN_ELSEWHERE)


@pytest.mark.parametrize(
    "name", [*SMOKES, *(pytest.param(name, marks=pytest.mark.slow) for name in SLOW_SMOKES)]
)
def test_smoke(name):
    command, patterns = (SMOKES | SLOW_SMOKES)[name]
    stdout = run_smoke(command)
    assert "measure nothing" in stdout  # the --smoke / --dry-run banner
    check_figures(stdout, patterns)
