"""Issue 24 §5: the convert fan-out at scale, on 2 cores.

In a working directory (a temp dir unless ``--workdir``) holding a copy of config/:

1. a toy sample of ``--files`` ROOT files, ``--jets`` jets in all, written by the toy
   simulator (half of the files QCD jets, sample ``qcd``; half signal jets with mS = 16,
   sample ``sig``), two files at a time;
2. the raw read: every file's branches that the toy reader maps, read as the convert reads
   them (``tree.iterate(..., library="ak")``, a fresh file, no cache), two processes (one per
   core), input in the page cache: wall and jets/s;
3. the conversion: the parts of both samples (``convert.files_per_job`` at its default),
   each converted as rule convert does, by two processes side by side (two convert jobs at a
   time, their start-up not counted): wall, jets/s and the ratio to the raw read (target >=
   0.7), best of ``--rounds`` rounds taken in turn with the raw read; the same with the output
   uncompressed (what the output's lzf compression costs; ``--no-uncompressed-pass`` drops
   it where the disk lacks room: 2.5 kB per jet); the CPU seconds of one part's raw read and
   conversion (lzf, uncompressed) in this process, which the machine's load sways less than
   the wall of two processes (best of ``--rounds``, at least 3, in turn); every conversion
   writes a file that does not exist yet (replacing one costs the unlink of the old, up to
   0.8 s for a 1.3 GB part); then as the workflow runs it,
   ``snakemake --cores 2`` of both samples' gathered files (parts, then the gathers, each
   job's start-up included);
4. the peak RSS of one convert job (``hepsnake convert --part 0`` in a fresh process) with
   ``files_per_job`` 1, 10 and 50 (target: flat in the number of files);
5. ``hepsnake split`` and ``hepsnake norm`` on the gathered files (virtual datasets over the
   parts): peak RSS (target <= 1.5 GB) and wall; the split once more on plain files (each sample
   converted into one file by one job), wall side by side and the prepared files compared
   byte for byte by digest (whether the split reads the virtual datasets fast enough); the
   prepared files written with ``--prepared-compression`` (default: the shipped config's),
   each kind's removed once digested, so that 10^7 jets fit on a 35 GB disk with lzf;
6. the dry run: a sample of ``--dry-files`` local files with ``files_per_job: 1`` (empty but
   the first, a toy file: the DAG opens each sample's first file for its branch list),
   ``snakemake -n`` of the whole workflow (nothing on disk yet) against a bare Snakefile with
   as many jobs (one per input file, a gather, a chain for the rest), ``--repeat`` rounds in
   turn, medians of wall and of CPU seconds (user + system: the figure that holds on a shared
   machine), each side's ratio (target: ratio <= 1.5).

Prints the figures (and the load average) as it goes. ``--smoke`` runs tiny sizes (a few
files, a few thousand jets, 200 dry-run files, one round). Run by hand, e.g.
``python benchmarks/scale.py --files 200 --jets 1000000``; the issue's 10^7 jets on this
machine's disk: ``--jets 10000000 --no-uncompressed-pass --prepared-compression lzf``.
Not a test.
"""

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import h5py
import uproot
import xxhash
import yaml
from _common import parse_args, peak_rss_mib, race, warm_page_cache, work_directory

from hepsnake import paths
from hepsnake.config import contract, read_config
from hepsnake.config.contracts import ConvertContract
from hepsnake.convert.parts import sample_parts
from hepsnake.io.root import FlatSource

REPO = Path(__file__).resolve().parents[1]
SAMPLES = {"qcd": ("qcd", None), "sig": ("sig", 16.0)}  # sample -> (toy process, mS)
CONVERT_TARGET, DRY_TARGET, MEMORY_TARGET_MIB = 0.7, 1.5, 1536
BARE_SNAKEFILE = """\
N = {n}
OTHER = {other}

rule all:
    input: f"chain/{{OTHER - 1}}.txt" if OTHER else "gathered.txt"

rule part:
    input: "inputs/dry/f{{i}}.root"
    output: "parts/{{i}}.txt"
    shell: "touch {{output}}"

rule gather:
    input: expand("parts/{{i}}.txt", i=range(N))
    output: "gathered.txt"
    shell: "touch {{output}}"

rule chain:
    input: lambda w: "gathered.txt" if int(w.k) == 0 else f"chain/{{int(w.k) - 1}}.txt"
    output: "chain/{{k}}.txt"
    shell: "touch {{output}}"
"""


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def figure(name: str, value: str) -> None:
    print(f"{name:<34} {value}", flush=True)


def write_toy_file(path: str, process: str, mass: float | None, jets: int, seed: int) -> None:
    """(Worker) one toy ROOT file."""
    from hepsnake.simulate.prepared import MASS_GRID
    from hepsnake.simulate.toy import simulate, write_root

    write_root(simulate(Path(path).stem, process, jets, seed, mass=mass, **MASS_GRID), path)


def make_inputs(inputs: Path, files: int, jets: int) -> dict[str, list[Path]]:
    """``files`` toy files, half per sample, ``jets`` jets in all (two processes)."""
    inputs.mkdir(parents=True, exist_ok=True)
    per_file = max(1, jets // files)
    made: dict[str, list[Path]] = {s: [] for s in SAMPLES}
    jobs = []
    for i in range(files):
        sample = list(SAMPLES)[i % 2]
        path = inputs / f"{sample}_{i:04d}.root"
        made[sample].append(path)
        jobs.append((str(path), *SAMPLES[sample], per_file, 1000 + i))
    with ProcessPoolExecutor(2) as pool:
        for future in [pool.submit(write_toy_file, *job) for job in jobs]:
            future.result()
    return made


def write_config(
    workdir: Path, name: str, inputs: dict[str, str], convert: dict, prepare: dict | None = None
) -> str:
    """``config/{name}.yaml``: the shipped config with the samples ``{sample: glob}`` (its
    class bib, of no sample, dropped at the split), ``convert`` and ``prepare`` over its
    sections."""
    samples = [
        {
            "name": sample,
            "files": glob,
            "reader": "toy",
            "label": SAMPLES[sample][0],
            "params": {"mS": SAMPLES[sample][1]} if SAMPLES[sample][1] else {},
        }
        for sample, glob in inputs.items()
    ]
    overlay = {
        "extends": "config/config.yaml",
        "samples": samples,
        "convert": convert,
        "prepare": {"empty_class": "drop"} | (prepare or {}),  # no bib sample
    }
    path = workdir / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return str(path.relative_to(workdir))


def read_raw(files: list[str], tree: str, branches: list[str], step: int) -> int:
    """(Worker) read ``branches`` of ``files`` as the convert does; the entries read."""
    n = 0
    for path in files:
        with uproot.open(path, array_cache=None) as f:
            for arrays in f[tree].iterate(branches, step_size=step, library="ak"):
                n += len(arrays)
    return n


def raw_read(convert: ConvertContract, files: list[Path]) -> tuple[float, int]:
    """Wall seconds and entries of the raw read of ``files`` (``convert``: a sample's contract,
    whose reader and chunk size the convert uses), one half per core."""
    reader = convert.reader
    source = FlatSource(str(files[0]), reader)
    halves = [[str(f) for f in files[i::2]] for i in range(2)]
    step = convert.convert.chunk_size
    with ProcessPoolExecutor(2) as pool:
        pool.submit(len, []).result()  # workers started before the clock
        start = time.perf_counter()
        futures = [pool.submit(read_raw, h, reader.tree, source.branches, step) for h in halves]
        entries = sum(f.result() for f in futures)
    return time.perf_counter() - start, entries


def warm() -> None:
    """(Worker) import the convert stage before the clock starts."""
    import hepsnake.convert.part  # noqa: F401


def convert_parts(
    workdir: str, config_file: str, jobs: list[tuple[str, int]], compression: str | None
) -> int:
    """(Worker) convert the parts ``jobs`` ((sample, index)) one after the other, each as
    rule convert does (its sample's contract; ``compression`` replaces the output's), into
    ``inproc/``; the jets written."""
    os.chdir(workdir)
    resolved = read_config(config_file)
    jets = 0
    for sample, index in jobs:
        c = compressed(contract(resolved, "convert", sample=sample), compression)
        jets += convert_one(c, index, f"inproc/{sample}-{index}")
    return jets


def compressed(convert: ConvertContract, compression: str | None) -> ConvertContract:
    """``convert`` with its output's compression replaced by ``compression`` (if given)."""
    if not compression:
        return convert
    return dataclasses.replace(
        convert, convert=dataclasses.replace(convert.convert, compression=compression)
    )


def convert_one(convert: ConvertContract, index: int, out: str) -> int:
    """Part ``index`` converted as rule convert does, into ``{out}.h5``; its jets."""
    from hepsnake.convert.part import convert_part

    return convert_part(convert, index, f"{out}.h5", False)["jets"]


def fresh_directory(path: Path) -> Path:
    """``path`` emptied (outside any clock: removing a large file takes time)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cpu_per_part(workdir: Path, convert: ConvertContract, rounds: int) -> list[float]:
    """CPU seconds (every thread) of the first part of ``convert``'s sample in this process:
    its raw read, its conversion, and its conversion with the output uncompressed (the run
    of least wall of ``rounds`` in turn): what the conversion adds to the read, robust to
    the machine's load where the wall of two processes is not."""
    out = fresh_directory(workdir / "inproc")
    names = (f"inproc/cpu-{i}" for i in itertools.count())  # never an existing file
    with contextlib.chdir(workdir):
        files = [str(f) for f in sample_parts(convert)[0].files]
        branches = FlatSource(files[0], convert.reader).branches
        tree, step = convert.reader.tree, convert.convert.chunk_size
        runs = race(
            rounds,
            lambda: read_raw(files, tree, branches, step),
            lambda: convert_one(convert, 0, next(names)),
            lambda: convert_one(compressed(convert, "none"), 0, next(names)),
        )
    fresh_directory(out)
    return [cpu for _, cpu in runs]


def convert_in_two_jobs(
    workdir: Path, config_file: str, jobs: list[tuple[str, int]], compression: str | None = None
) -> float:
    """Wall seconds of the parts ``jobs`` converted by two processes side by side (two
    convert jobs at a time, job start-up not counted), into an emptied ``inproc/``."""
    fresh_directory(workdir / "inproc")
    halves = [jobs[i::2] for i in range(2)]
    with ProcessPoolExecutor(2) as pool:
        for future in [pool.submit(warm) for _ in range(2)]:
            future.result()
        start = time.perf_counter()
        futures = [
            pool.submit(convert_parts, str(workdir), config_file, h, compression) for h in halves
        ]
        for future in futures:
            future.result()
    return time.perf_counter() - start


class Timed(NamedTuple):
    """A finished command: wall and CPU seconds (its processes' user + system), its output."""

    wall: float
    cpu: float
    stdout: str
    stderr: str


def children_cpu() -> float:
    """User + system seconds of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(workdir: Path, cmd: list[str], what: str) -> Timed:
    """``cmd`` run in ``workdir`` (exits, naming ``what`` and its last output, when it
    fails)."""
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{what} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return Timed(wall, children_cpu() - cpu, proc.stdout, proc.stderr)


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> Timed:
    """``snakemake -s SNAKEFILE ARGS`` run in ``workdir``."""
    cmd = ["snakemake", "-s", str(snakefile), *args]
    return timed(workdir, cmd, f"snakemake {' '.join(args)}")


def peak_of(workdir: Path, *verb: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``hepsnake VERB`` in a fresh process."""
    cmd = [sys.executable, __file__, "--child", *verb]
    run = timed(workdir, cmd, f"hepsnake {' '.join(verb)}")
    return run.wall, json.loads(run.stdout.strip().splitlines()[-1])["peak_mib"]


def child(verb: list[str]) -> None:
    """(Subprocess) ``hepsnake VERB`` in this process; print its peak RSS as JSON."""
    from hepsnake.cli import main

    status = main(verb)
    print(json.dumps({"status": status, "peak_mib": peak_rss_mib()}))
    sys.exit(status)


def split_of(workdir: Path, config: str, inputs: list[str], out: str) -> tuple[float, float]:
    """Wall and peak RSS of the split of ``inputs`` into ``out/`` (a fresh process)."""
    Path(workdir / out).mkdir(parents=True, exist_ok=True)
    outputs = [f"{out}/{s}.h5" for s in ("train", "val", "test")]
    verb = ["split", "--config", config, "--inputs", *inputs, "--outputs", *outputs]
    return peak_of(workdir, *verb, "--summary", f"{out}/summary.json")


def norm_of(workdir: Path, config: str, out: str) -> tuple[float, float]:
    """Wall and peak RSS of the norm of the train split in ``out/`` (a fresh process)."""
    verb = ["norm", "--config", config, "--train", f"{out}/train.h5", "--norm", f"{out}/norm.yaml"]
    return peak_of(workdir, *verb, "--class-dict", f"{out}/class.yaml")


def bench_convert(args: argparse.Namespace, workdir: Path) -> None:
    """Steps 1 to 5."""
    start = time.perf_counter()
    made = make_inputs(workdir / "inputs", args.files, args.jets)
    files = [f for paths_ in made.values() for f in paths_]
    figure("toy sample", f"{len(files)} files, written in {time.perf_counter() - start:.0f} s")
    globs = {s: f"inputs/{s}_*.root" for s in SAMPLES}
    prepare = {"compression": args.prepared_compression} if args.prepared_compression else {}
    config_file = write_config(workdir, "scale", globs, {}, prepare)
    cwd = Path.cwd()
    os.chdir(workdir)
    try:
        resolved = read_config(config_file)
        contracts = {s: contract(resolved, "convert", sample=s) for s in SAMPLES}
        jobs = [(s, part.index) for s, c in contracts.items() for part in sample_parts(c)]
    finally:
        os.chdir(cwd)
    warm_page_cache(files)
    best = {"raw": float("inf"), "convert": float("inf"), "uncompressed": float("inf")}
    for _ in range(args.rounds):  # in turn, so that a change of the machine's load hits all
        raw_wall, entries = raw_read(contracts["qcd"], files)
        best["raw"] = min(best["raw"], raw_wall)
        best["convert"] = min(best["convert"], convert_in_two_jobs(workdir, config_file, jobs))
        if args.uncompressed_pass:
            wall = convert_in_two_jobs(workdir, config_file, jobs, "none")
            best["uncompressed"] = min(best["uncompressed"], wall)
    figure(
        "raw uproot read, 2 processes",
        f"{entries:,} jets in {best['raw']:.1f} s: {entries / best['raw']:,.0f} jets/s",
    )
    figure(
        "convert, 2 jobs side by side",
        f"{len(jobs)} parts in {best['convert']:.1f} s: {entries / best['convert']:,.0f} jets/s"
        f" read and converted (best of {args.rounds})",
    )
    ratio = best["raw"] / best["convert"]
    figure(
        "ratio convert/raw",
        f"{ratio:.2f} (target >= {CONVERT_TARGET}: "
        f"{'met' if ratio >= CONVERT_TARGET else 'NOT met'}); {load_average()}",
    )
    if args.uncompressed_pass:
        figure(
            "ratio convert/raw, output uncompressed",
            f"{best['raw'] / best['uncompressed']:.2f} (the output's lzf compression apart)",
        )
    raw_cpu, lzf_cpu, none_cpu = cpu_per_part(workdir, contracts["qcd"], max(3, args.rounds))
    figure(
        "CPU per part, one process",
        f"raw read {raw_cpu:.2f} s, convert {lzf_cpu:.2f} s ({raw_cpu / lzf_cpu:.2f}x),"
        f" uncompressed {none_cpu:.2f} s ({raw_cpu / none_cpu:.2f}x); {load_average()}",
    )
    targets = [paths.fill(paths.CONVERTED, sample=s) for s in SAMPLES]
    wall = snakemake(workdir, *targets, "--cores", "2", "--configfile", config_file).wall
    jets = sum(
        json.loads((workdir / paths.fill(paths.CONVERT_SUMMARY, sample=s)).read_text())["jets"]
        for s in SAMPLES
    )
    figure(
        "convert, snakemake --cores 2",
        f"{jets:,} jets in {wall:.1f} s, parts and gathers, job start-up included:"
        f" {entries / wall:,.0f} jets/s",
    )

    peaks = []
    for per_job in args.per_job:
        name = f"per_job_{per_job}"
        part_config = write_config(workdir, name, {"qcd": globs["qcd"]}, {"files_per_job": per_job})
        out = f"memory/{name}"
        wall, peak = peak_of(
            workdir,
            "convert",
            "--config",
            part_config,
            "--sample",
            "qcd",
            "--part",
            "0",
            "--output",
            f"{out}.h5",
            "--no-progress",
        )
        n = min(per_job, len(made["qcd"]))
        (workdir / f"{out}.h5").unlink()
        peaks.append(peak)
        figure(f"  convert job of {n:>3} files", f"peak RSS {peak:,.0f} MiB, {wall:.1f} s")
    figure(
        "convert job peak RSS",
        f"{min(peaks):,.0f}-{max(peaks):,.0f} MiB over {args.per_job} files per job",
    )

    plain = [f"plain/{s}.h5" for s in SAMPLES]
    for s in SAMPLES:  # each sample into one file by one job (no --part)
        verb = ["convert", "--config", config_file, "--sample", s]
        outputs = ["--output", f"plain/{s}.h5", "--summary", f"plain/{s}.json"]
        peak_of(workdir, *verb, *outputs, "--no-progress")
    splits = {"gathered": (float("inf"), 0.0), "plain": (float("inf"), 0.0)}
    digests: dict[str, dict[str, str]] = {}
    norms: dict[str, tuple[float, float]] = {}
    for last in [False] * (args.rounds - 1) + [True]:  # in turn, as the raw read and convert
        for kind, inputs in (("gathered", targets), ("plain", plain)):
            out = fresh_directory(workdir / "prepared" / kind)
            wall, peak = split_of(workdir, config_file, inputs, f"prepared/{kind}")
            splits[kind] = (min(splits[kind][0], wall), max(splits[kind][1], peak))
            if last:  # one kind's prepared files on disk at a time
                norms[kind] = norm_of(workdir, config_file, f"prepared/{kind}")
                digests[kind] = prepared_digests(out)
                for split in out.glob("*.h5"):
                    split.unlink()
    norm_wall, norm_peak = norms["gathered"]
    for kind, (wall, peak) in splits.items():
        figure(
            f"split of {kind} files",
            f"{jets / wall:,.0f} jets/s (best of {args.rounds}), peak RSS {peak:,.0f} MiB",
        )
    figure("norm", f"peak RSS {norm_peak:,.0f} MiB, {norm_wall:.1f} s")
    worst = max(splits["gathered"][1], norm_peak)
    met = "met" if worst <= MEMORY_TARGET_MIB else "NOT met"
    figure(
        "split/norm peak RSS",
        f"{worst:,.0f} MiB at {jets:,} jets (target <= {MEMORY_TARGET_MIB} MiB: {met})",
    )
    same = digests["gathered"] == digests["plain"]
    figure("prepared datasets, gathered vs plain", "identical" if same else "DIFFERENT")
    figure(
        "split wall gathered / plain",
        f"{splits['gathered'][0] / splits['plain'][0]:.2f}; {load_average()}",
    )
    if not same:
        sys.exit("the prepared files of the gathered and the plain samples differ")


def prepared_digests(folder: Path) -> dict[str, str]:
    """Per prepared file in ``folder`` (the splits, the norm dict): a digest of its content
    (each dataset's name, dtype, shape and bytes, read in blocks; a YAML file's bytes)."""
    digests = {}
    for name in ("train.h5", "val.h5", "test.h5"):
        digest = xxhash.xxh3_64()
        with h5py.File(folder / name) as h5:
            for key in sorted(h5):
                ds = h5[key]
                digest.update(f"{key} {ds.dtype.descr} {ds.shape}".encode())
                for start in range(0, ds.shape[0], 100_000):
                    digest.update(ds[start : start + 100_000].tobytes())
        digests[name] = digest.hexdigest()
    digests["norm.yaml"] = xxhash.xxh3_64((folder / "norm.yaml").read_bytes()).hexdigest()
    return digests


def job_total(output: str) -> int:
    """The total of a dry run's job-stats table."""
    match = re.search(r"^total\s+(\d+)$", output, re.M)
    if not match:
        sys.exit(f"no job stats in:\n{output[-2000:]}")
    return int(match.group(1))


def bench_dry_run(args: argparse.Namespace, workdir: Path) -> None:
    """Step 6."""
    folder = workdir / "inputs" / "dry"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"f{i}.root" for i in range(1, args.dry_files)]:
        (folder / name).touch()
    # the first file of each sample a real one: the DAG opens it for its branch list
    write_toy_file(str(folder / "f0.root"), *SAMPLES["qcd"], 10, 1)
    write_toy_file(str(folder / "sig.root"), *SAMPLES["sig"], 10, 2)
    config_file = write_config(
        workdir,
        "dry",
        {"qcd": "inputs/dry/f*.root", "sig": "inputs/dry/sig.root"},
        {"files_per_job": 1},
    )
    first = snakemake(workdir, "-n", "--configfile", config_file)
    total = job_total(first.stdout + first.stderr)
    bare = workdir / "bare"
    bare.mkdir(exist_ok=True)
    (bare / "inputs").symlink_to(workdir / "inputs")
    (bare / "Snakefile").write_text(
        BARE_SNAKEFILE.format(n=args.dry_files, other=total - args.dry_files - 2)
    )
    ours: list[Timed] = []
    theirs: list[Timed] = []
    for _ in range(args.repeat):
        ours.append(snakemake(workdir, "-n", "--configfile", config_file))
        theirs.append(snakemake(bare, "-n", snakefile=bare / "Snakefile"))
        if job_total(theirs[-1].stdout + theirs[-1].stderr) != total:
            sys.exit(f"the bare DAG is not {total} jobs:\n{theirs[-1].stdout[-2000:]}")
    for what in ("wall", "cpu"):
        mine = statistics.median(getattr(run, what) for run in ours)
        bare_s = statistics.median(getattr(run, what) for run in theirs)
        figure(
            f"dry run, {args.dry_files:,} files, {what}",
            f"{total:,} jobs: hepsnake {mine:.1f} s, bare Snakemake {bare_s:.1f} s"
            f" (medians of {args.repeat})",
        )
        ratio = mine / bare_s
        figure(
            f"ratio dry run hepsnake/bare, {what}",
            f"{ratio:.2f} (target <= {DRY_TARGET}: "
            f"{'met' if ratio <= DRY_TARGET else 'NOT met'}); {load_average()}",
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="toy ROOT files")
    parser.add_argument("--jets", type=int, default=1_000_000, help="jets in all the files")
    parser.add_argument(
        "--per-job",
        type=int,
        nargs="+",
        default=[1, 10, 50],
        help="files per job of the convert-job memory runs",
    )
    parser.add_argument("--dry-files", type=int, default=10_000, help="files of the dry run")
    parser.add_argument("--repeat", type=int, default=3, help="dry-run rounds (medians)")
    parser.add_argument("--rounds", type=int, default=2, help="raw/convert rounds (best)")
    parser.add_argument("--workdir", help="where files are written (default: a temp dir)")
    parser.add_argument("--skip-convert", action="store_true", help="no steps 1 to 5")
    parser.add_argument("--skip-dry-run", action="store_true", help="no step 6")
    parser.add_argument(
        "--no-uncompressed-pass",
        dest="uncompressed_pass",
        action="store_false",
        help="no conversion of every part with the output uncompressed (2.5 kB per jet)",
    )
    parser.add_argument(
        "--prepared-compression",
        choices=["none", "lzf", "gzip"],
        help="of the prepared files (default: the shipped config's)",
    )
    smoke = {"files": 4, "jets": 2000, "per_job": [1, 2], "dry_files": 200, "repeat": 1}
    args = parse_args(parser, smoke | {"rounds": 1})
    figure("machine", f"{os.cpu_count()} CPUs, {load_average()}")
    with work_directory(args.workdir) as workdir:
        shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
        if not args.skip_convert:
            bench_convert(args, workdir)
        if not args.skip_dry_run:
            bench_dry_run(args, workdir)


if __name__ == "__main__":
    main()
