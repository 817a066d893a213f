"""Wall time of one example's whole DAG (``snakemake --cores 2``), per job, and its fixed cost.

A fresh scratch directory gets a copy of config/; the example's ``samples.tsv`` has its
``~/.local/skhepdata/NAME`` file paths rewritten to ``skhep_testdata.data_path(NAME)`` (which
downloads the file once, into the same cache); then

    snakemake -s Snakefile -d SCRATCH --cores 2 --configfile config/examples/NAME/config.yaml

runs from an empty ``results/`` and is timed (wall, with Snakemake's own start-up and DAG).
Snakemake's log (``.snakemake/log/*.snakemake.log``: a ``[date]`` line before each job starts
and before each ``Finished jobid``, one-second resolution) gives each job's wall time.

The *fixed cost* of a job is what its ``hepsnake`` command pays before any work, per verb
(the verb of each rule's shell command, read from workflow/rules/*.smk), median of
``--repeat`` rounds timed after the DAG run with benchmarks/startup.py's helpers:

* ``hepsnake <verb> --help``: interpreter and CLI start-up, the floor of every job;
* a *no-op run* (startup.py's: the verb on missing inputs): also the imports of its stage
  and the config read, up to the first input.

Each is summed over the DAG's jobs and given as a fraction of the total wall time. The target
is a whole DAG of at most 60 s on 2 cores. Run by hand from the repository root, e.g.
``python benchmarks/example_dag.py`` or ``python benchmarks/example_dag.py --example
physlite_btagging --keep``. ``--smoke`` (a slow test runs it: the DAG is the smallest there is)
times the fixed costs once.
"""

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skhep_testdata
from _common import parse_args, work_directory
from dag import loadavg, parse_log, snakemake_exe
from startup import REPO, noop_args, timed

TARGET_S = 60.0
CORES = 2
CACHE_PREFIX = "~/.local/skhepdata/"


def rule_verbs() -> dict[str, str]:
    """Rule name -> the ``hepsnake`` verb its shell command runs (workflow/rules/*.smk)."""
    verbs: dict[str, str] = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            match = re.match(r"(?:local)?rule (\w+):", line)
            if match:
                rule = match.group(1)
            match = re.search(r'"hepsnake (\w+)', line)
            if rule and match and rule not in verbs:
                verbs[rule] = match.group(1)
    return verbs


def write_scratch(scratch: Path, example: str) -> Path:
    """Copy config/ to ``scratch``; point the example's samples at skhep_testdata's files.

    Returns the example's config file, relative to ``scratch``.
    """
    shutil.copytree(REPO / "config", scratch / "config")
    folder = Path("config") / "examples" / example
    if not (scratch / folder / "config.yaml").is_file():
        raise SystemExit(f"no example {example!r} under config/examples/")
    tsv = scratch / folder / "samples.tsv"
    with tsv.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    column = rows[0].index("files")
    for row in rows[1:]:
        files = row[column].split(",")
        row[column] = ",".join(
            skhep_testdata.data_path(f[len(CACHE_PREFIX) :]) if f.startswith(CACHE_PREFIX) else f
            for f in files
        )
    with tsv.open("w", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)
    return folder / "config.yaml"


def run_dag(scratch: Path, configfile: Path) -> float:
    """Wall seconds of the whole DAG from an empty results/ (fails loudly on an error)."""
    cmd = [snakemake_exe(), "-s", str(REPO / "Snakefile"), "-d", str(scratch)]
    cmd += ["--cores", str(CORES), "--configfile", str(configfile)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return wall


def fixed_costs(verbs: list[str], repeat: int, missing: Path) -> dict[str, list[float | None]]:
    """Per verb: median seconds of ``--help`` (wall) and of a no-op run (wall, CPU), the rounds
    interleaved; the no-op figures are None where startup.noop_args cannot build the verb's
    arguments (the error is printed)."""
    runs: dict[str, list[list[float]]] = {v: [[], [], []] for v in verbs}
    noop: dict[str, list[str] | None] = {}
    for verb in verbs:
        try:
            noop[verb] = [sys.executable, "-m", "hepsnake.cli", verb, *noop_args(verb, missing)]
        except Exception as exc:  # a stale helper must not cost the DAG run's figures
            print(f"no no-op run for {verb}: startup.noop_args raised {exc!r}")
            noop[verb] = None
    for _ in range(repeat):
        for verb in verbs:
            runs[verb][0].append(timed([sys.executable, "-m", "hepsnake.cli", verb, "--help"])[0])
            cmd = noop[verb]
            if cmd is not None:
                wall, cpu, _ = timed(cmd)
                runs[verb][1].append(wall)
                runs[verb][2].append(cpu)
    return {v: [statistics.median(r) if r else None for r in runs[v]] for v in verbs}


def bench(args: argparse.Namespace, scratch: Path) -> None:
    configfile = write_scratch(scratch, args.example)
    load_before = loadavg()
    total = run_dag(scratch, configfile)
    load_after = loadavg()
    logs = sorted((scratch / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"no Snakemake log under {scratch / '.snakemake' / 'log'}")
    jobs = [job for job in parse_log(logs[-1]) if job[0] != "all"]
    verbs = rule_verbs()

    print(
        f"example {args.example}: snakemake --cores {CORES}, {len(jobs)} jobs, load average"
        f" {load_before} before / {load_after} after, {os.cpu_count()} CPUs"
    )
    width = max([9, *(len(wildcards) for _, wildcards, _ in jobs)])
    print(f"{'rule':16} {'verb':9} {'wildcards':{width}} {'wall [s]':>8}")
    for rule, wildcards, wall in jobs:
        print(f"{rule:16} {verbs.get(rule, '-'):9} {wildcards or '-':{width}} {wall:8.0f}")
    busy = sum(wall for _, _, wall in jobs)
    print(f"sum of job walls {busy:.0f} s (1 s resolution; jobs overlap on {CORES} cores)")
    verdict = "met" if total <= TARGET_S else "MISSED"
    print(f"total wall {total:.1f} s: target <= {TARGET_S:.0f} s {verdict}")

    used = sorted({verbs[rule] for rule, _, _ in jobs if rule in verbs})
    costs = fixed_costs(used, args.repeat, scratch / "missing")
    print(
        f"\nfixed cost per job, median of {args.repeat} [s] (timed after the run, load average"
        f" {loadavg()})"
    )
    print(f"{'verb':9} {'jobs':>4} {'--help':>7} {'no-op':>7} {'no-op CPU':>9}")
    sums = [0.0, 0.0, 0.0]
    missing = []
    for verb in used:
        n = sum(1 for rule, _, _ in jobs if verbs.get(rule) == verb)
        cells = []
        for k, seconds in enumerate(costs[verb]):
            cells.append("n/a" if seconds is None else f"{seconds:.2f}")
            sums[k] += n * (seconds or 0.0)
        if costs[verb][1] is None:
            missing.append(verb)
        print(f"{verb:9} {n:4d} {cells[0]:>7} {cells[1]:>7} {cells[2]:>9}")
    what = ("--help wall (CLI start-up)", "no-op wall (imports, config)", "no-op CPU")
    for label, seconds in zip(what, sums, strict=True):
        print(
            f"sum over the DAG's jobs, {label}: {seconds:.1f} s = {seconds / total:.0%} of the"
            f" total wall, {seconds / max(busy, 1.0):.0%} of the summed job walls"
        )
    if missing:
        print(f"  (the no-op sums leave out {', '.join(missing)}: no figure)")
    if args.keep:
        print(f"\nkept {scratch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="physlite_btagging", help="config/examples/NAME")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the fixed-cost timings")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parse_args(parser, {"repeat": 1})
    path = tempfile.mkdtemp(prefix="hepsnake-example-") if args.keep else None
    with work_directory(path) as scratch:
        bench(args, scratch)


if __name__ == "__main__":
    main()
