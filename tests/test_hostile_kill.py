"""kill -9 in the middle of a stage, then the rerun: the outputs of a clean run, and no
temporary left anywhere under results/ (issue 12, item 8). Each job is killed while it waits at
a named pause point (:mod:`hepsnake.pause`), so the kill always lands mid-stage."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, default_config

from hepsnake.config import resolve, validate
from hepsnake.pause import environment, wait_reached
from hepsnake.prepare.split import SPLITS
from hepsnake.simulate.prepared import MASS_GRID, convert_samples
from hepsnake.simulate.toy import simulate, write_root

HEPSNAKE = shutil.which("hepsnake")
TOY = {"qcd": ("qcd", None, 12000), "bib": ("bib", None, 4000), "sig": ("sig", 16.0, 4000)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    """The config file of three toy samples and their converted files (``h5/``)."""
    root = tmp_path_factory.mktemp("kill")
    config = default_config() | {"samples": []}
    for name, (process, mass, n) in TOY.items():
        write_root(simulate(name, process, n, 9, mass=mass, **MASS_GRID), root / f"{name}.root")
        entry = {"name": name, "files": [str(root / f"{name}.root")], "reader": "toy"}
        config["samples"].append(entry | {"label": process, "params": {"mS": mass} if mass else {}})
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    (root / "h5").mkdir()
    convert_samples(resolve(validate(config)), root / "h5")
    return path, root / "h5"


def split_cmd(toy: tuple[Path, Path], results: Path) -> list[str]:
    config, h5 = toy
    prepared = results / "prepared"
    return [
        *(HEPSNAKE, "split", "--config", str(config)),
        *("--inputs", *(str(h5 / f"{n}.h5") for n in TOY)),
        *("--outputs", *(str(prepared / f"{s}.h5") for s in SPLITS)),
        *("--debug", *(str(prepared / f"debug_{s}.h5") for s in SPLITS)),
        *("--summary", str(prepared / "summary.json")),
    ]


def convert_cmd(toy: tuple[Path, Path], results: Path) -> list[str]:
    config, _ = toy
    out = results / "h5"
    return [
        *(HEPSNAKE, "convert", "--config", str(config), "--sample", "qcd", "--no-progress"),
        *("--output", str(out / "qcd.h5"), "--summary", str(out / "qcd.summary.json")),
    ]


def temporaries(results: Path) -> list[Path]:
    """Hidden files and folders under ``results`` (every temporary is one, or inside one)."""
    return sorted(p for p in results.rglob(".*"))


def files(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("*") if p.is_file()}


def kill_at(cmd: list[str], point: str, pauses: Path) -> None:
    """Run ``cmd`` until it waits at pause point ``point``, SIGKILL it there, wait for it."""
    env = os.environ | environment(pauses, point)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_reached(pauses, point) == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("make_cmd", "point", "scratch"),
    [
        # in the bucket shuffle: the jets' buckets are written, the outputs are temporary
        (split_cmd, "split.buckets_written", ".split-*/buckets.h5"),
        # a first chunk written to the temporary output
        (convert_cmd, "convert.chunk_written", ".qcd.h5.tmp.d/qcd.h5"),
    ],
    ids=["split", "convert"],
)
def test_kill_then_rerun_equals_a_clean_run(make_cmd, point, scratch, toy, tmp_path):
    clean, killed = tmp_path / "clean" / "results", tmp_path / "killed" / "results"
    run(make_cmd(toy, clean))
    assert temporaries(clean) == []
    kill_at(make_cmd(toy, killed), point, tmp_path)
    assert list(killed.rglob(scratch)), "the kill left no scratch file behind"
    run(make_cmd(toy, killed))
    assert temporaries(killed) == []
    assert files(killed) == files(clean)


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    exe = shutil.which("snakemake")
    assert exe, "snakemake is installed"
    return [exe, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1", *args]


def test_snakemake_lock_kill_unlock_resume(tmp_path):
    """Two runs at once: the second is refused by Snakemake's lock. kill -9 of the whole run
    in the split job: the rerun needs ``--unlock`` (as README.md says), then resumes (the
    workflow profile sets ``rerun-incomplete``) and leaves no temporary."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    target = ["results/prepared/train.h5", "--configfile", "config/tiny.yaml"]
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    first = subprocess.Popen(
        snakemake_cmd(tmp_path, *target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its process group: snakemake and its job
        env=os.environ | environment(pauses, "split.buckets_written"),
    )
    try:
        wait_reached(pauses, "split.buckets_written")  # the split job waits: the run holds
        second = subprocess.run(snakemake_cmd(tmp_path, *target), capture_output=True, text=True)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
    assert (tmp_path / "results" / "prepared" / ".train.h5.tmp.d").is_dir()
    again = subprocess.run(snakemake_cmd(tmp_path, *target), capture_output=True, text=True)
    assert again.returncode != 0 and "--unlock" in again.stdout + again.stderr
    run(snakemake_cmd(tmp_path, "--unlock", *target))
    run(snakemake_cmd(tmp_path, *target))  # profiles/default: rerun-incomplete
    assert temporaries(tmp_path / "results") == []
    assert (tmp_path / "results" / "prepared" / "train.h5").is_file()
