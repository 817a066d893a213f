"""Run Snakemake with the real htcondor executor plugin, replacing only ``htcondor2.Schedd``.

The recorder stores each submit description (JSON lines in ``$RECORDER_FILE``), runs the
job here as an execute node would (the submit file's executable, arguments, output and
error files; the environment ``getenv`` selects plus ``environment``), and appends genuine
job-event-log entries (submit, execute, terminated) to the log the plugin reads with
``htcondor2.JobEventLog``. Jobs whose batch name starts with ``$RECORDER_FAIL_ONCE`` fail on
their first attempt and those starting with ``$RECORDER_FAIL_ALWAYS`` on every attempt
(exit code 1, as a broken execute node would), without running. Jobs starting with
``$RECORDER_HOLD_ONCE`` are held on their first attempt, for going over their memory request
(HoldReasonCode 34, as the startd's memory policy holds them), and never run.

Usage: ``python htcondor_recorder.py <snakemake arguments>``.
"""

import fnmatch
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import htcondor2

HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618>"
USAGE = "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  {} Usage\n"
MEMORY_HOLD = (
    "Job was held.\n\tError from slot1_1@{host}: Job has gone over cgroup memory limit of "
    "{request} megabytes. Peak usage: {peak} megabytes.  Consider resubmitting with a higher "
    "request_memory.\n\tCode 34 Subcode 0"
)


def condor_arguments(text: str) -> list[str]:
    """Split an HTCondor ``arguments`` value (old syntax, or new syntax in double quotes)."""
    if text.startswith('"') and text.endswith('"'):
        return shlex.split(text[1:-1].replace('""', '\\"'))
    return [a.replace('\\"', '"') for a in text.split()]


def condor_environment(text: str) -> dict[str, str]:
    """Parse an ``environment`` value (new syntax: ``"A=1 B='x y'"``)."""
    return dict(item.split("=", 1) for item in shlex.split(text.strip('"')))


def getenv(value: str, name: str) -> bool:
    """Whether ``getenv = value`` (true/false or a list of names with ``*``) copies ``name``."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in re.split(r"[,\s]+", value) if p)


class SubmitResult:
    """What ``Schedd.submit`` returns: the cluster id."""

    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster

    def first_proc(self) -> int:
        return 0

    def num_procs(self) -> int:
        return 1


class RecordingSchedd:
    """A schedd that records submissions and runs each job locally, synchronously."""

    clusters = itertools.count(1)
    attempts: dict[str, int] = {}  # noqa: RUF012  (shared by every Schedd() the plugin makes)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, description: htcondor2.Submit, *args: Any, **kwargs: Any) -> SubmitResult:
        cluster = next(self.clusters)
        submit = {key: description[key] for key in description.keys()}  # noqa: SIM118
        with open(os.environ["RECORDER_FILE"], "a") as fh:
            fh.write(json.dumps({"cluster": cluster, "submit": submit}) + "\n")
        name = submit["batch_name"]
        self.attempts[name] = self.attempts.get(name, 0) + 1
        log = Path(submit["log"])
        self.event(log, cluster, "000", "Job submitted from host: " + HOST)
        self.event(log, cluster, "001", "Job executing on host: " + HOST)
        hold_once = os.environ.get("RECORDER_HOLD_ONCE")
        if hold_once and name.startswith(hold_once) and self.attempts[name] == 1:
            request = int(submit["request_memory"].removesuffix("MB"))
            held = MEMORY_HOLD.format(host="127.0.0.1", request=request, peak=request + 500)
            self.event(log, cluster, "012", held)
            return SubmitResult(cluster)
        code = self.execute(submit, cluster, name)
        terminated = f"Job terminated.\n\t(1) Normal termination (return value {code})\n"
        terminated += "".join(USAGE.format(u) for u in ("Run Remote", "Run Local"))
        terminated += "".join(USAGE.format(u) for u in ("Total Remote", "Total Local"))
        self.event(log, cluster, "005", terminated.rstrip("\n"))
        return SubmitResult(cluster)

    def execute(self, submit: dict[str, str], cluster: int, name: str) -> int:
        def path(key: str) -> Path:
            return Path(submit[key].replace("$(ClusterId)", str(cluster)))

        fail_once = os.environ.get("RECORDER_FAIL_ONCE")
        fail_always = os.environ.get("RECORDER_FAIL_ALWAYS")
        if (fail_once and name.startswith(fail_once) and self.attempts[name] == 1) or (
            fail_always and name.startswith(fail_always)
        ):
            path("error").write_text("recorder: simulated execute-node failure\n")
            path("output").write_text("")
            return 1
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
        env |= {k: v for k, v in os.environ.items() if getenv(submit.get("getenv", "false"), k)}
        env |= condor_environment(submit.get("environment", ""))
        command = [submit["executable"], *condor_arguments(submit["arguments"])]
        with path("output").open("w") as out, path("error").open("w") as err:
            return subprocess.run(command, stdout=out, stderr=err, env=env, check=False).returncode

    @staticmethod
    def event(log: Path, cluster: int, code: str, text: str) -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with log.open("a") as fh:
            fh.write(f"{code} ({cluster:03d}.000.000) {stamp} {text}\n...\n")

    def query(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def history(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def act(self, *args: Any, **kwargs: Any) -> None:
        pass


def main() -> None:
    htcondor2.Schedd = RecordingSchedd
    from snakemake.cli import main as snakemake

    sys.argv[0] = re.sub(r"\.py$", "", sys.argv[0])
    snakemake(sys.argv[1:])


if __name__ == "__main__":
    main()
