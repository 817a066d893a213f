"""Helpers shared by the benchmarks (imported as ``_common``: the scripts run as
``python benchmarks/<name>.py``, which puts this directory first on ``sys.path``)."""

import argparse
import contextlib
import gc
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"


SMOKE_NOTE = "--smoke: tiny sizes, to check that the script runs; its figures measure nothing"


def parse_args(parser: argparse.ArgumentParser, smoke: dict[str, Any]) -> argparse.Namespace:
    """The command line, with ``--smoke`` added: it makes ``smoke`` (destination -> value) the
    defaults, so the script runs in seconds on tiny sizes; options given explicitly still win.
    """
    parser.add_argument("--smoke", action="store_true", help=SMOKE_NOTE.split(": ", 1)[1])
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args()
        print(SMOKE_NOTE, flush=True)
    return args


def shipped_config() -> dict[str, Any]:
    """config/config.yaml as a dict (not validated)."""
    return yaml.safe_load(CONFIG.read_text())


@contextlib.contextmanager
def work_directory(path: str | None) -> Iterator[Path]:
    """``path`` (created), or a temporary directory removed afterwards when it is None."""
    with contextlib.ExitStack() as stack:
        if path is None:
            path = stack.enter_context(tempfile.TemporaryDirectory(prefix="hepsnake-bench-"))
        workdir = Path(path)
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of one call after a garbage collection; CPU counts every thread."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def race(repeat: int, *fns: Callable[[], Any]) -> list[tuple[float, float]]:
    """Per function of ``fns``: the fastest of ``repeat`` :func:`timed` runs, (wall, CPU).

    The functions run in turn, which keeps the comparison fair when the machine's load varies.
    """
    best = [(float("inf"), float("inf"))] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timed(fn))
    return best


def warm_page_cache(paths: Iterable[str | Path]) -> None:
    """Read the files once so that every timing starts from the page cache."""
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    ``VmHWM`` belongs to the current address space, so unlike ``ru_maxrss`` it does not
    inherit the parent's high-water mark across ``fork``/``exec`` (which ``subprocess``
    uses); ``ru_maxrss`` is the fallback where there is no ``/proc`` (macOS).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024**2 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
