"""Benchmark of ``snakemake -n`` on the full hepsnake DAG (the top-level ``Snakefile``).

For each sample count N (default 1, 100, 1000) a temporary working directory gets a copy of
config/ whose ``config.yaml`` declares N samples, the eight kinds of the default config in
turn: with ``--inputs toy`` (default) N toy samples (``simulate.samples`` plus a matching
``samples.tsv``: N simulate and N convert jobs), with ``--inputs files`` N samples read from
empty local files (N convert jobs, as for real input files); then

* the *full* dry run, ``snakemake -n`` with nothing on disk (the whole DAG to schedule), is
  timed; its job list (printed in execution order) is parsed and every output file is
  created, empty; ``snakemake --touch --forceall`` then records the jobs' metadata (params,
  code, input, ...: what the rerun triggers of profiles/default compare, as after a real
  run), and the modification times are set increasing along the execution order;
* the *no-op* dry run, ``snakemake -n`` once everything is up to date, is timed; it must say
  "Nothing to be done", or the figure would be meaningless and the script stops.

As a baseline for the machine's speed and load, the same no-op dry run is timed on a bare
three-rule Snakefile written to the temp dir (Snakemake's own start-up and DAG cost). The
no-op runs of all cases are interleaved, ``--repeat`` rounds, and reported as median and min.
The target is a no-op dry run of at most 2.5 s at 100 samples.

``--profile`` additionally profiles the no-op dry run at ``--profile-samples`` samples with
``python -X importtime`` (import time per package) and cProfile (the cumulative time of known
hot spots, and the functions with the most own time; cProfile itself slows the run ~1.4x).

``--full-run`` instead runs the default DAG for real, ``snakemake --cores 2`` from an empty
``results/`` in a scratch directory holding a copy of config/ (target: at most 8 minutes on 2
cores), and prints where the time goes (each job's wall from Snakemake's log and the sum per
rule) and its physics gates (baseline and parameterised within 0.01 of the Bayes-optimal AUC,
adversarial data/MC K-S at most half the baseline's); ``--jobs-from LOG`` prints the same
table for an existing ``.snakemake/log`` file.

Run by hand, e.g. ``python benchmarks/dag.py`` or ``python benchmarks/dag.py --samples 100
--repeat 5 --profile`` or ``python benchmarks/dag.py --full-run``. ``--smoke`` (a test runs it)
only checks that the script runs: one sample, one round; with ``--full-run``, the DAG of
config/tiny.yaml (its gates are not expected to hold at that size).
"""

import argparse
import contextlib
import csv
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from _common import parse_args, work_directory

from hepsnake.config import load as load_config
from hepsnake.config import load_model

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 2.5  # no-op dry run at TARGET_SAMPLES samples
TARGET_SAMPLES = 100
FULL_TARGET_S = 480.0  # the default DAG from an empty results/ (--full-run)
GAP_TARGET = 0.01  # the largest AUC gap to the Bayes-optimal AUC of the default DAG's gates
NOTHING = "Nothing to be done"
# the sample kinds of config/config.yaml: (toy spec, role, label, params)
KINDS: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "qcd": ({"process": "qcd"}, "train", "qcd", ""),
    "bib": ({"process": "bib"}, "train", "bib", ""),
    "sig_mS5": ({"process": "sig", "mS": 5}, "train", "sig", "mS=5"),
    "sig_mS16": ({"process": "sig", "mS": 16}, "train", "sig", "mS=16"),
    "sig_mS55": ({"process": "sig", "mS": 55}, "train", "sig", "mS=55"),
    "sig_mS40": ({"process": "sig", "mS": 40}, "test", "sig", "mS=40"),
    "data": ({"process": "qcd", "mismodel": True, "data": True}, "control", "data", ""),
    "mc": ({"process": "qcd"}, "control", "mc", ""),
}
# (file suffix, function) -> what it stands for, in the profile of a dry run
HOTSPOTS: dict[tuple[str, str], str] = {
    ("snakemake/cli.py", "<module>"): "import snakemake.cli (with plugin discovery)",
    ("plugin_registry/__init__.py", "__init__"): "plugin discovery: imports every plugin",
    ("snakemake/workflow.py", "configfile"): "configfile: load config/config.yaml",
    ("snakemake/workflow.py", "include"): "run the Snakefile and workflow/rules/*.smk",
    ("rules/common.smk", "<module>"): "common.smk: imports and config validation",
    ("snakemake/utils.py", "validate"): "snakemake.utils.validate (common.smk)",
    ("hepsnake/config/loading.py", "validate"): "hepsnake.config.validate (common.smk)",
    ("hepsnake/config/schema.py", "check_schema"): "hepsnake.config.check_schema",
    ("hepsnake/config/loading.py", "load_model"): "hepsnake.config.load_model",
    ("hepsnake/config/contracts.py", "stage_digest"): "hepsnake.config.stage_digest (params)",
    ("yaml/__init__.py", "load"): "YAML parsing",
    ("snakemake/workflow.py", "_build_dag"): "build the DAG and decide what to run",
    ("snakemake/dag.py", "file2jobs"): "find the jobs producing each file (wildcard regexes)",
    ("snakemake/rules.py", "expand_input"): "evaluate inputs (input functions)",
    ("snakemake/rules.py", "expand_params"): "evaluate params (params functions)",
    ("snakemake/dag.py", "update_needrun"): "decide what to run (mtimes, metadata)",
    ("snakemake/persistence/__init__.py", "metadata"): "read job metadata",
}
TOY_SNAKEFILE = """\
rule all:
    input:
        "c.txt",


rule b:
    input:
        "b.txt",
    output:
        "c.txt",
    shell:
        "cp {input} {output}"


rule a:
    output:
        "b.txt",
    shell:
        "touch {output}"
"""
# ``snakemake --touch`` that does not sleep 0.1 s per job (it does so to order the mtimes,
# which make_up_to_date sets afterwards): minutes saved at 1000 samples
TOUCH_MAIN = """\
import sys
import snakemake.executors.touch as touch
from snakemake.cli import main
touch.Executor.SLEEPING_TIME = 0
sys.argv[0] = "snakemake"
main()
"""


def snakemake_exe() -> str:
    """The ``snakemake`` next to this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).with_name("snakemake")
    found = str(here) if here.is_file() else shutil.which("snakemake")
    if not found:
        raise SystemExit("snakemake not found")
    return found


def write_workdir(workdir: Path, n: int, inputs: str) -> None:
    """Copy config/ to ``workdir`` and declare ``n`` samples in its config.yaml.

    ``toy``: ``n`` simulated toy samples (``n`` simulate + ``n`` convert jobs); ``files``: ``n``
    samples read from empty local files ``data/{name}.root``, a day old, as real input files
    would be (``n`` convert jobs; the default toys, never requested, schedule nothing).
    """
    shutil.copytree(REPO / "config", workdir / "config")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    toys: dict[str, dict[str, Any]] = {}
    rows = []
    kinds = list(KINDS)
    old = time.time() - 86400
    for i in range(n):
        kind = kinds[i % len(kinds)]
        spec, role, label, params = KINDS[kind]
        name = f"{kind}_{i:04d}"
        if inputs == "toy":
            toys[name] = {**spec, "n_jets": 1000}
            files = f"results/toy/{name}.root"
        else:
            files = f"data/{name}.root"
            (workdir / "data").mkdir(exist_ok=True)
            (workdir / files).touch()
            os.utime(workdir / files, (old, old))
        rows.append([name, files, "toy", "", role, label, params, "1.0"])
    if inputs == "toy":
        config["simulate"]["samples"] = toys
    config["samples"] = "config/samples.tsv"
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with (workdir / "config" / "samples.tsv").open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["name", "files", "reader", "tree", "role", "label", "params", "xsec"])
        writer.writerows(rows)


def dry_run(snakefile: Path, workdir: Path, *extra: str) -> tuple[float, str]:
    """Wall seconds and combined output of ``snakemake -n`` (fails loudly on an error)."""
    cmd = [snakemake_exe(), "-s", str(snakefile), "-d", str(workdir), "-n", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    return seconds, out


def planned_jobs(out: str) -> list[tuple[str, list[str]]]:
    """(rule, output files) of each job of a dry run's listing (a job after its inputs' jobs)."""
    jobs: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        match = re.match(r"(?:local)?rule (\w+):$", line)
        if match:
            jobs.append((match.group(1), []))
        elif jobs and line.startswith("    output: "):
            jobs[-1][1].extend(line[len("    output: ") :].split(", "))
    return jobs


def job_total(out: str) -> int:
    """The ``total`` of a dry run's job-stats table (0 if it has none)."""
    match = re.search(r"^total\s+(\d+)$", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def make_up_to_date(workdir: Path, jobs: list[tuple[str, list[str]]]) -> int:
    """Create every job output, empty, each job's one second newer than the job before."""
    t0 = time.time() - len(jobs) - 10
    created = 0
    for k, (_, outputs) in enumerate(jobs):
        for name in outputs:
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (t0 + k, t0 + k))
            created += 1
    return created


def record_metadata(snakefile: Path, workdir: Path) -> float:
    """Seconds to record every job's metadata, as a real run would, with ``--touch``."""
    cmd = [sys.executable, "-c", TOUCH_MAIN, "-s", str(snakefile), "-d", str(workdir)]
    start = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--touch", "--forceall", "--cores", "1", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"snakemake --touch failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - start


def prepare(snakefile: Path, workdir: Path, out: str, metadata: bool, label: str) -> str:
    """Make ``workdir`` up to date from its full dry-run output; a line saying what was done."""
    plan = planned_jobs(out)
    files = make_up_to_date(workdir, plan)
    note = f"{files} outputs created"
    if metadata:
        note += f", metadata recorded in {record_metadata(snakefile, workdir):.0f} s"
        make_up_to_date(workdir, plan)  # --touch gave them all about the same mtime
    noop_check(snakefile, workdir, label)
    return note


def noop_check(snakefile: Path, workdir: Path, label: str) -> None:
    """Stop unless the dry run in ``workdir`` has nothing to do."""
    _, out = dry_run(snakefile, workdir)
    if NOTHING not in out:
        raise SystemExit(f"{label}: the no-op dry run is not a no-op:\n{out[-3000:]}")


def loadavg() -> str:
    """The 1-minute load average, as text."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def profile(workdir: Path, snakefile: Path, top: int) -> None:
    """Print import time per package and the cost of known hot spots of one no-op dry run."""
    cmd = ["-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "-n"]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, check=False
    )
    own: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            own[package] = own.get(package, 0) + int(match.group(1))
    print(f"\n-X importtime: {sum(own.values()) / 1e6:.2f} s of imports; by top-level package:")
    for package, us in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {us / 1e6:6.3f}  {package}")

    stats_file = workdir / "dryrun.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats_file), *cmd],
        capture_output=True,
        check=True,
    )
    stats = pstats.Stats(str(stats_file))
    print(f"\ncProfile ({stats.total_tt:.2f} s profiled): cumulative s, calls, of")
    found: dict[tuple[str, str], tuple[float, int]] = {}
    for (path, _, name), (_, calls, _, cumulative, _) in stats.stats.items():
        for key in HOTSPOTS:
            if path.endswith(key[0]) and name == key[1]:
                found[key] = max(found.get(key, (0.0, 0)), (cumulative, calls))
    for key, what in HOTSPOTS.items():
        cumulative, calls = found.get(key, (0.0, 0))
        print(f"  {cumulative:6.3f} {calls:6d}  {what} [{key[0]}:{key[1]}]")
    print(f"\ncProfile, top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)


def median_min(values: list[float]) -> str:
    """``median (min)`` in seconds."""
    return f"{statistics.median(values):6.2f} ({min(values):5.2f})"


def bench(args: argparse.Namespace, tmp: Path) -> None:
    """Prepare the cases, time the full and the no-op dry runs, print the table."""
    snakefile = REPO / "Snakefile"
    toy_dir = tmp / "toy"
    toy_dir.mkdir()
    toy_snakefile = toy_dir / "Snakefile"
    toy_snakefile.write_text(TOY_SNAKEFILE)
    prepare(toy_snakefile, toy_dir, dry_run(toy_snakefile, toy_dir)[1], args.metadata, "toy")

    full: dict[int, list[float]] = {}
    jobs: dict[int, int] = {}
    for n in args.samples:
        workdir = tmp / f"n{n}"
        write_workdir(workdir, n, args.inputs)
        full[n] = []
        for _ in range(args.repeat):
            seconds, out = dry_run(snakefile, workdir)
            full[n].append(seconds)
        jobs[n] = job_total(out)
        if len(planned_jobs(out)) != jobs[n]:
            raise SystemExit(f"{n} samples: job list and job stats disagree")
        note = prepare(snakefile, workdir, out, args.metadata, f"{n} samples")
        print(f"{n} samples: {jobs[n]} jobs, {note}", flush=True)

    noop: dict[str, list[float]] = {"toy": []} | {str(n): [] for n in args.samples}
    cases = [("toy", toy_snakefile, toy_dir)]
    cases += [(str(n), snakefile, tmp / f"n{n}") for n in args.samples]
    for _ in range(args.repeat):
        for key, case_snakefile, workdir in cases:
            seconds, out = dry_run(case_snakefile, workdir)
            if NOTHING not in out:
                raise SystemExit(f"{key}: a timed no-op dry run had work to do:\n{out[-3000:]}")
            noop[key].append(seconds)

    print(
        f"\nsnakemake -n, seconds, median (min) of {args.repeat}; {args.inputs} samples;"
        f" load average {loadavg()}"
    )
    print(f"{'samples':>8} {'jobs':>6} {'no-op dry run':>15} {'full dry run':>15}")
    print(f"{'toy':>8} {3:6d} {median_min(noop['toy']):>15} {'-':>15}")
    for n in args.samples:
        print(f"{n:8d} {jobs[n]:6d} {median_min(noop[str(n)]):>15} {median_min(full[n]):>15}")
    toy = statistics.median(noop["toy"])
    for n in args.samples:
        print(f"  {n} samples: no-op is toy + {statistics.median(noop[str(n)]) - toy:.2f} s")
    if TARGET_SAMPLES in args.samples:
        at = statistics.median(noop[str(TARGET_SAMPLES)])
        verdict = "met" if at <= TARGET_S else "MISSED"
        print(
            f"target: no-op dry run <= {TARGET_S} s at {TARGET_SAMPLES} samples:"
            f" {verdict} ({at:.2f} s, bare toy {toy:.2f} s)"
        )
    if args.profile:
        n = args.profile_samples
        if n not in args.samples:
            workdir = tmp / f"n{n}"
            write_workdir(workdir, n, args.inputs)
            out = dry_run(snakefile, workdir)[1]
            prepare(snakefile, workdir, out, args.metadata, f"{n} samples")
        print(f"\nprofile of the no-op dry run at {n} samples")
        profile(tmp / f"n{n}", snakefile, args.top)


def parse_log(log: Path) -> list[tuple[str, str, float]]:
    """(rule, wildcards, wall seconds) of each finished job of a Snakemake log, by start."""
    stamp: datetime | None = None
    started: dict[str, tuple[str, str, datetime]] = {}  # jobid -> rule, wildcards, start
    current: list[str | None] = [None, None]  # rule and jobid of the job block being read
    jobs: list[tuple[datetime, str, str, float]] = []
    for line in log.read_text().splitlines():
        match = re.fullmatch(r"\[(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\]", line.strip())
        if match:
            stamp = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        match = re.fullmatch(r"(?:local)?rule (\w+):", line)
        if match and stamp is not None:
            current = [match.group(1), None]
            continue
        match = re.fullmatch(r"\s+jobid: (\d+)", line)
        if match and current[0] is not None and stamp is not None:
            current[1] = match.group(1)
            started[match.group(1)] = (current[0], "", stamp)
            continue
        match = re.fullmatch(r"\s+wildcards: (.*)", line)
        if match and current[1] in started:
            rule, _, start = started[current[1]]
            started[current[1]] = (rule, match.group(1), start)
            continue
        match = re.match(r"Finished jobid: (\d+)", line)
        if match and match.group(1) in started and stamp is not None:
            rule, wildcards, start = started.pop(match.group(1))
            jobs.append((start, rule, wildcards, (stamp - start).total_seconds()))
    return [(rule, wildcards, wall) for _, rule, wildcards, wall in sorted(jobs)]


def job_table(log: Path) -> None:
    """Print each job of a Snakemake log (start order) and the wall summed per rule."""
    jobs = [job for job in parse_log(log) if job[0] != "all"]
    width = max([9, *(len(wildcards) for _, wildcards, _ in jobs)])
    print(f"\n{len(jobs)} jobs of {log.name} (1 s resolution)")
    print(f"{'rule':18} {'wildcards':{width}} {'wall [s]':>8}")
    for rule, wildcards, wall in jobs:
        print(f"{rule:18} {wildcards or '-':{width}} {wall:8.0f}")
    per_rule: dict[str, list[float]] = {}
    for rule, _, wall in jobs:
        per_rule.setdefault(rule, []).append(wall)
    busy = sum(wall for _, _, wall in jobs)
    print(f"\n{'rule':18} {'jobs':>4} {'sum [s]':>8} {'share':>6}")
    for rule, walls in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"{rule:18} {len(walls):4d} {sum(walls):8.0f} {sum(walls) / max(busy, 1):6.0%}")
    print(f"{'all jobs':18} {len(jobs):4d} {busy:8.0f}")


def full_run(workdir: Path, cores: int, configfile: str | None) -> None:
    """The default DAG (config/config.yaml, or ``configfile`` relative to the repository)
    from an empty results/ in ``workdir`` (a copy of config/; the repository's Snakefile),
    ``snakemake --cores CORES``: total wall, then :func:`job_table` and
    :func:`physics_gates`."""
    shutil.copytree(REPO / "config", workdir / "config")
    cmd = [snakemake_exe(), "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    cmd += ["--cores", str(cores), *(["--configfile", configfile] if configfile else [])]
    load = loadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    verdict = "met" if wall <= FULL_TARGET_S else "MISSED"
    print(
        f"{configfile or 'default'} DAG, snakemake --cores {cores}: {wall:.0f} s"
        f" (target <= {FULL_TARGET_S:.0f} s on 2 cores: {verdict}); load average {load} before,"
        f" {loadavg()} after"
    )
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"no Snakemake log under {workdir / '.snakemake' / 'log'}")
    job_table(logs[-1])
    with contextlib.chdir(workdir):
        config = load_config(str(workdir / (configfile or "config/config.yaml")))
        physics_gates(config, workdir / "results" / "metrics")


def physics_gates(config: dict[str, Any], metrics: Path) -> None:
    """The physics gates of a DAG run from its metrics files, for the models and signal class of
    its (validated) ``config``: every model's AUC gap to the Bayes-optimal AUC per background
    and at each unseen parameter value, and each adversarial model's data/MC K-S of the signal
    probability over that of the first model without an adversary."""
    signal = config["evaluate"]["signal"]
    met = {m: json.loads((metrics / f"{m}.json").read_text()) for m in config["models"]}
    print("\nphysics gates (test split)")
    for model, entry_of in met.items():
        for name, entry in entry_of.get("backgrounds", {}).items():
            print_gap(f"{model} vs {name}", entry)
        for par, values in entry_of.get("parameters", {}).items():
            for value, per in values.items():
                if per["unseen"]:
                    print_gap(f"{model} at unseen {par} = {value}", per["inclusive"])
    adversarial = [m for m in met if load_model(config, m).get("adversarial")]
    plain = [m for m in met if m not in adversarial and "control_ks" in met[m]]
    if not adversarial or not plain:
        return
    reference = met[plain[0]]["control_ks"][signal]["ks"]
    for model in adversarial:
        ks = met[model]["control_ks"][signal]["ks"]
        ratio = ks / reference
        print(
            f"data/MC K-S of p_{signal}: {plain[0]} {reference:.4f}, {model} {ks:.4f}:"
            f" {ratio:.2f}x ({'met' if ratio <= 0.5 else 'MISSED'})"
        )


def print_gap(label: str, entry: dict[str, float]) -> None:
    """One line: ``entry``'s AUC, its Bayes-optimal AUC and the gap against GAP_TARGET."""
    gap = entry["bayes_auc"] - entry["auc"]
    print(
        f"{label}: AUC {entry['auc']:.4f}, Bayes {entry['bayes_auc']:.4f}, gap {gap:.4f}"
        f" (<= {GAP_TARGET}: {'met' if gap <= GAP_TARGET else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--samples", type=int, nargs="+", default=[1, 100, 1000], help="sample counts"
    )
    parser.add_argument(
        "--inputs",
        default="toy",
        choices=["toy", "files"],
        help="samples simulated by the workflow (toy) or read from local files (files)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timings per case (median, min)")
    parser.add_argument("--workdir", help="where the cases are set up (default: a temp dir)")
    parser.add_argument(
        "--no-metadata",
        dest="metadata",
        action="store_false",
        help="skip recording job metadata (the no-op then checks mtimes only)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile one no-op dry run")
    parser.add_argument(
        "--profile-samples", type=int, default=TARGET_SAMPLES, help="samples of the profiled run"
    )
    parser.add_argument("--top", type=int, default=25, help="rows per profile listing")
    parser.add_argument(
        "--full-run",
        action="store_true",
        help="instead: run the default DAG for real (minutes) and print its per-job table",
    )
    parser.add_argument("--cores", type=int, default=2, help="cores of --full-run")
    parser.add_argument(
        "--configfile",
        help="--full-run: this config (relative to the repository) instead of the default",
    )
    parser.add_argument(
        "--jobs-from", type=Path, help="instead: print the per-job table of this Snakemake log"
    )
    args = parse_args(parser, {"samples": [1], "repeat": 1, "configfile": "config/tiny.yaml"})
    if args.jobs_from is not None:
        job_table(args.jobs_from)
        return
    if args.full_run:
        with work_directory(args.workdir) as workdir:
            full_run(workdir, args.cores, args.configfile)
        return
    if args.workdir is not None:
        tmp = Path(args.workdir)
        tmp.mkdir(parents=True)  # must not exist: the cases need fresh directories
        bench(args, tmp)
        return
    with tempfile.TemporaryDirectory(prefix="hepsnake-dag-") as name:
        bench(args, Path(name))


if __name__ == "__main__":
    main()
