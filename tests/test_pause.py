"""Pause points: a job waits at a named point until the test releases it."""

import os
import subprocess
import sys

from hepsnake.pause import environment, release, wait_reached

SCRIPT = (
    "from hepsnake.pause import pause_point\n"
    "pause_point('other')\n"
    "print('before', flush=True)\n"
    "pause_point('here')\n"
    "print('after', flush=True)\n"
)


def test_a_job_waits_at_its_point_until_released(tmp_path):
    env = os.environ | environment(tmp_path, "here")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE)
    assert wait_reached(tmp_path, "here", timeout_s=60) == proc.pid
    assert proc.poll() is None  # still waiting: the marker does not go away
    assert proc.stdout.readline() == b"before\n"
    release(tmp_path, "here")
    out, _ = proc.communicate(timeout=60)
    assert out == b"after\n"
    assert proc.returncode == 0


def test_without_the_variables_a_point_costs_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEPSNAKE_PAUSE")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, timeout=60)
    assert out.stdout == b"before\nafter\n"
    assert not list(tmp_path.iterdir())
