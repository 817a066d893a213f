"""Named pause points, for tests that must act at a known point inside a job.

A test sets ``HEPSNAKE_PAUSE_AT=NAME`` (a comma-separated list of point names) and
``HEPSNAKE_PAUSE_DIR=DIR`` in a job's environment. A process that reaches :func:`pause_point`
``NAME`` writes ``DIR/NAME.reached`` (holding its pid) and waits there until
``DIR/NAME.release`` exists. The marker stays, so the test waits for it without a race
(:func:`wait_reached`), then acts (kills the job, stops a server, fills a disk) and, if the job
should go on, calls :func:`release`. Without the variables a pause point costs one lookup.
"""

import os
import time
from pathlib import Path

PAUSE_AT = "HEPSNAKE_PAUSE_AT"
PAUSE_DIR = "HEPSNAKE_PAUSE_DIR"
POLL_S = 0.05


def pause_point(name: str) -> None:
    """Wait at point ``name`` if the environment asks for it (see the module docstring)."""
    wanted = os.environ.get(PAUSE_AT)
    if not wanted or name not in wanted.split(","):
        return
    directory = Path(os.environ[PAUSE_DIR])
    marker = directory / f"{name}.reached"
    partial = directory / f".{name}.reached.{os.getpid()}"
    partial.write_text(str(os.getpid()))
    partial.replace(marker)  # whole or absent: the test never reads a half-written pid
    release_file = directory / f"{name}.release"
    while not release_file.exists():
        time.sleep(POLL_S)


def wait_reached(directory: Path, name: str, timeout_s: float = 600.0) -> int:
    """Wait until some process waits at point ``name``; its pid.

    Raises ``TimeoutError`` after ``timeout_s`` (the job failed before the point, or never
    had the variables).
    """
    marker = Path(directory) / f"{name}.reached"
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no process reached pause point {name!r} in {timeout_s:g} s")
        time.sleep(POLL_S)
    return int(marker.read_text())


def release(directory: Path, name: str) -> None:
    """Let the processes waiting at point ``name`` go on."""
    (Path(directory) / f"{name}.release").touch()


def environment(directory: Path, *names: str) -> dict[str, str]:
    """The variables that make a job pause at ``names``, writing its markers to ``directory``."""
    return {PAUSE_AT: ",".join(names), PAUSE_DIR: str(directory)}
