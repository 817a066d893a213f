"""``benchmarks/scale.py --smoke`` runs and prints its figure lines (no timing asserted: a smoke
run measures nothing). Its entry belongs in ``tests/test_benchmarks.py``'s ``SMOKES`` table
once both are on one branch."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

NUMBER = r"[\d,]+(?:\.\d+)?"
SCALE = (
    ["scale.py", "--smoke"],
    [
        rf"^ratio convert/raw\s+{NUMBER} \(target >= 0\.7",
        rf"^convert job peak RSS\s+{NUMBER}-{NUMBER} MiB over \[1, 2\] files per job",
        rf"^split/norm peak RSS\s+{NUMBER} MiB at {NUMBER} jets",
        r"^prepared datasets, gathered vs plain\s+identical$",
        rf"^dry run, 200 files\s+{NUMBER} jobs: hepsnake {NUMBER} s, bare Snakemake {NUMBER} s",
        rf"^ratio dry run hepsnake/bare\s+{NUMBER} \(target <= 1\.5",
    ],
)


@pytest.mark.slow
def test_scale_smoke(tmp_path):
    command, patterns = SCALE
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / command[0]), *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for pattern in patterns:
        assert re.search(pattern, proc.stdout, re.M), (pattern, proc.stdout)
