"""Sample files on a real XRootD server (Debian's xrootd, tests/cluster/xrootd-up.sh).

The convert jobs read ``root://`` and ``xroot://`` globs (listed once) as a user's job reads
EOS; the outputs equal those of the same files read from local disk. A server that stops while
a job reads fails its part within the configured XRootD timeouts, and the gather with one line
naming the (redacted) URL; the rerun after the server is back converts the part and
completes.

Where no server is reachable the tests skip (``HEPSNAKE_REQUIRE_CLUSTER=1``, set by
``.ci/run``, makes that a failure). The server's directory and port are those of
``xrootd-up.sh``: ``XRD_ROOT`` (default /tmp/hepsnake-xrd) and ``XRD_PORT`` (11094).
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO, cluster_unavailable, snakemake

from hepsnake import pause

SCRIPTS = REPO / "tests" / "cluster"
HOW = "as root: tests/cluster/xrootd-up.sh"
# a failed read must not wait minutes for a server that is gone (XRootD defaults: 5 x 120 s)
FAST_FAIL = {"connection_window_s": 2, "connection_retry": 1}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server() -> tuple[str, Path]:
    """The server .ci/run started: its URL and the local directory behind ``//eos``."""
    port = int(os.environ.get("XRD_PORT", "11094"))
    data = Path(os.environ.get("XRD_ROOT", "/tmp/hepsnake-xrd")) / "data" / "eos"
    if not (importlib.util.find_spec("fsspec_xrootd") and importlib.util.find_spec("XRootD")):
        cluster_unavailable("fsspec-xrootd or xrootd is missing", "pip install -e '.[remote]'")
    if not port_open(port) or not data.is_dir():
        cluster_unavailable(f"no XRootD server on localhost:{port} serving {data}", HOW)
    return f"root://localhost:{port}//eos", data


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A toy ROOT file, simulated by the workflow as in a user's tiny run."""
    work = tmp_path_factory.mktemp("toy")
    shutil.copytree(REPO / "config", work / "config")
    snakemake(work, "--cores", "1", "results/toy/qcd.root", "--configfile", "config/tiny.yaml")
    return work / "results" / "toy" / "qcd.root"


@pytest.fixture(scope="module")
def served(server, toy) -> tuple[str, Path]:
    """Two files (a.root, b.root) in a fresh directory on the server: its URL and path."""
    url, data = server
    name = f"hepsnake-test-{uuid.uuid4().hex[:8]}"
    directory = data / name
    directory.mkdir()
    for copy in ("a.root", "b.root"):
        shutil.copy(toy, directory / copy)
    yield f"{url}/{name}", directory
    shutil.rmtree(directory)


def sample_config(work: Path, files: str, **convert: object) -> str:
    """Write a config file with one sample ``toy`` of ``files``; its path relative to ``work``."""
    shutil.copytree(REPO / "config", work / "config", dirs_exist_ok=True)
    config = {
        "extends": "config/config.yaml",
        "samples": [{"name": "toy", "files": files, "reader": "toy", "label": "qcd"}],
        "convert": {"chunk_size": 1000, **({"xrootd": convert} if convert else {})},
    }
    (work / "config" / "remote.yaml").write_text(yaml.safe_dump(config))
    return "config/remote.yaml"


def convert_cmd(work: Path, config: str) -> list[str]:
    exe = shutil.which("snakemake")
    assert exe, "snakemake is installed"
    target = ["results/h5/toy.h5", "--configfile", config]
    return [exe, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "1", *target]


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Run a ``convert_cmd`` to success (relative config paths are the working directory's)."""
    cwd = cmd[cmd.index("-d") + 1]
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def content(path: Path) -> dict:
    """Every dataset (dtype, bytes) and attribute of an HDF5 file, less the records that
    name the input files (their paths, and the config that lists them)."""
    out: dict = {}
    with h5py.File(path) as h5:
        attrs = {k: v for k, v in h5.attrs.items() if k not in ("inputs", "config")}
        out["/"] = {k: np.asarray(v).tolist() for k, v in attrs.items()}
        for name, ds in h5.items():
            out[name] = (ds.dtype, ds[:].tobytes(), {k: str(v) for k, v in ds.attrs.items()})
    return out


def per_file(summary: dict) -> list[tuple]:
    return [(f["entries"], f["jets_read"], f["jets_written"]) for f in summary["files"]]


@pytest.fixture(scope="module")
def local(served, tmp_path_factory) -> tuple[dict, dict]:
    """The content and summary of the sample converted from the same files on local disk."""
    _, directory = served
    work = tmp_path_factory.mktemp("local")
    run(convert_cmd(work, sample_config(work, f"{directory}/*.root")))
    summary = json.loads((work / "results" / "h5" / "toy.summary.json").read_text())
    return content(work / "results" / "h5" / "toy.h5"), summary


@pytest.mark.parametrize("scheme", ["root", "xroot"])
def test_remote_glob_converts_like_local_files(scheme, served, local, tmp_path):
    url, _ = served
    url = url.replace("root://", f"{scheme}://", 1)
    work = tmp_path / scheme
    run(convert_cmd(work, sample_config(work, f"{url}/*.root")))
    summary = json.loads((work / "results" / "h5" / "toy.summary.json").read_text())
    # the glob was listed on the server, in the user's scheme
    assert [f["path"] for f in summary["files"]] == [f"{url}/a.root", f"{url}/b.root"]
    local_content, local_summary = local
    assert per_file(summary) == per_file(local_summary)
    assert summary["jets"] == local_summary["jets"] > 0
    assert content(work / "results" / "h5" / "toy.h5") == local_content


def test_server_stopped_mid_job_fails_fast_then_rerun_completes(server, local, toy, tmp_path):
    """A private server (stopped and restarted here): the job waits at the pause point
    ``convert.file_opened`` (a file open, no jet read yet) while the server is stopped."""
    if not shutil.which("xrootd") or os.geteuid() != 0:
        cluster_unavailable("the xrootd server binary or root rights are missing", HOW)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="hepsnake-xrd-stop-"))  # user xrootd must reach it
    env = os.environ | {"XRD_ROOT": str(root), "XRD_PORT": str(port)}
    for var in ("XRD_CONNECTIONWINDOW", "XRD_CONNECTIONRETRY"):  # the config sets them
        env.pop(var, None)

    def xrootd(script: str) -> None:
        subprocess.run(["bash", str(SCRIPTS / script)], env=env, check=True, timeout=120)

    try:
        xrootd("xrootd-up.sh")
        (root / "data" / "eos" / "stop").mkdir()
        for copy in ("a.root", "b.root"):
            shutil.copy(toy, root / "data" / "eos" / "stop" / copy)
        # a user name in the URL: the error line must show it redacted
        url = f"root://ci@localhost:{port}//eos/stop"
        work = tmp_path / "stop"
        cmd = convert_cmd(work, sample_config(work, f"{url}/*.root", **FAST_FAIL))
        points = tmp_path / "pause"
        points.mkdir()
        job_env = env | pause.environment(points, "convert.file_opened")
        proc = subprocess.Popen(
            cmd, cwd=work, env=job_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        pause.wait_reached(points, "convert.file_opened", timeout_s=240)
        xrootd("xrootd-down.sh")
        pause.release(points, "convert.file_opened")
        released = time.monotonic()
        output, _ = proc.communicate(timeout=240)
        failed_after = time.monotonic() - released
        assert proc.returncode != 0
        # connection_retry x connection_window_s = 2 s, plus the job's own exit
        assert failed_after < 60, f"the job took {failed_after:.0f} s to fail"
        # the part's job writes it as failed; the gather stops the sample (no failure allowed)
        log = (work / "results" / "logs" / "convert" / "toy.log").read_text()
        errors = [line for line in log.splitlines() if "error" in line.lower()]
        shown = f"root://***@localhost:{port}//eos/stop/a.root"
        assert errors == [
            "hepsnake gather: error: sample 'toy': 1 of 1 parts failed"
            f" (convert.max_failed_fraction 0); part 0: {shown}: cannot read 'jets': remote"
            " read failed (OSError: Server query for vector read info failed: [FATAL]"
            " Connection error)"
        ], log
        assert errors[0] in output.decode(), "Snakemake shows the failed job's log"
        assert not (work / "results" / "h5" / "toy.h5").exists()
        part_log = (work / "results" / "logs" / "convert" / "toy" / "part-00000.log").read_text()
        assert "ci@" not in log + part_log

        xrootd("xrootd-up.sh")
        run(cmd, env)
        summary = json.loads((work / "results" / "h5" / "toy.summary.json").read_text())
        assert summary["jets"] == local[1]["jets"]
        assert content(work / "results" / "h5" / "toy.h5") == local[0]
    finally:
        subprocess.run(["bash", str(SCRIPTS / "xrootd-down.sh")], env=env, check=False)
        shutil.rmtree(root, ignore_errors=True)
