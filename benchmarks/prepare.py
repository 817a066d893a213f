"""Benchmark of the ``prepare`` stage (norm stats, split) against a raw h5py read of the same files.

Writes synthetic FTAG-layout files with :class:`hepsnake.io.h5.TableWriter` (``jets`` (N,),
``tracks`` (N, 40) with ~10 valid slots per jet, ``clusters`` (N, 30) with ~8, valid packed
first, padding zero), then

* times a raw read: every dataset in full, ``read_direct`` in chunks of ``--chunk`` jets
  (default: norm_stats' own) into one preallocated buffer, decompression included, in one
  thread: what any consumer has to pay;
* times :func:`hepsnake.prepare.norm.norm_stats` on the same train file with the ``inputs`` of
  config/config.yaml (all three collections, log1p transforms), target >= 0.8x the raw read
  throughput; norm_stats reads in a background thread, so its CPU time is printed too;
* times :func:`hepsnake.prepare.split.split` of three converted-style samples (same layout,
  ``sample`` attribute set) totalling N jets, against a raw read of those inputs;
* measures peak RSS of norm_stats (N, 2N jets) and split (N/2, N jets) in fresh subprocesses;
* or, with ``--split-memory 1e6,3e6``, only split's peak RSS (and wall time) at those sizes
  and its linear extrapolation to 1e8 jets, with ``prepare.weights.mode`` from
  ``--split-weights`` (run it with ``PYTHONPATH`` at another checkout's ``src`` to measure
  that code the same way).

All timings start from a warm page cache and are the best of ``--repeat``, contenders run in
turn. The machine should be otherwise idle (the load average is printed). Run by hand, e.g.
``python benchmarks/prepare.py --jets 500000 --compression lzf``; ``--smoke`` (a test runs it,
also with ``--split-memory 3000,6000``) only checks that the script runs.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from _common import (
    parse_args,
    peak_rss_mib,
    race,
    shipped_config,
    warm_page_cache,
    work_directory,
)

from hepsnake.config import contract, resolve, validate
from hepsnake.io.h5 import TableWriter
from hepsnake.prepare.norm import CHUNK
from hepsnake.prepare.split import derived_fields, with_derived

SLOTS = {"tracks": 40, "clusters": 30}
MULTIPLICITY = {"tracks": 10, "clusters": 8}  # mean valid constituents per jet
FIELDS = {
    "tracks": ["pt", "deta", "dphi", "d0", "z0"],
    "clusters": ["e", "f_em", "time", "deta", "dphi"],
}
POSITIVE = {"pt", "e", "f_em"}  # exponential rather than normal values
JET_DTYPE = np.dtype(
    [(f, np.float32) for f in ("pt", "eta", "log_ratio", "time", "width")]
    + [("flavour_label", np.int32), ("train_weight", np.float32), ("weight", np.float32)]
    + [("eventNumber", np.int64)]
)
SAMPLES = {"qcd": 0, "sig": 1, "bib": 2}  # split inputs: name -> class label
BLOCK = 50_000  # jets generated and appended at a time


def synthetic_block(
    n: int, first: int, rng: np.random.Generator, label: int | None, slots: dict[str, int]
) -> dict[str, np.ndarray]:
    """``n`` jets with their constituents (``slots``: collection -> slots) as FTAG structured
    arrays."""
    jets = np.empty(n, JET_DTYPE)
    jets["pt"] = 20.0 + rng.exponential(40.0, n)
    jets["eta"] = rng.uniform(-2.5, 2.5, n)
    for field in ("log_ratio", "time", "width"):
        jets[field] = rng.normal(1.0, 0.5, n)
    jets["flavour_label"] = rng.integers(0, len(SAMPLES), n) if label is None else label
    jets["train_weight"] = rng.uniform(0.5, 1.5, n)
    jets["weight"] = 1.0
    jets["eventNumber"] = np.arange(first, first + n) // 2 + 1
    tables = {"jets": jets}
    for coll, width in slots.items():
        table = np.zeros((n, width), [("valid", bool)] + [(f, np.float32) for f in FIELDS[coll]])
        counts = np.minimum(rng.poisson(MULTIPLICITY[coll], n), width)
        valid = np.arange(width) < counts[:, None]
        table["valid"] = valid
        total = int(counts.sum())
        for f in FIELDS[coll]:
            values = rng.exponential(1.0, total) if f in POSITIVE else rng.normal(0.0, 1.0, total)
            table[f][valid] = values
        tables[coll] = table
    return tables


def write_file(
    path: Path,
    n: int,
    compression: str,
    seed: int,
    sample: str | None = None,
    slots: dict[str, int] = SLOTS,
) -> Path:
    """Write ``n`` synthetic jets chunked as TableWriter does: a converted file of ``sample``
    (its attribute set), or without a sample a prepared file (with the fields the split
    derives from the shipped ``inputs.transforms``, which norm_stats reads)."""
    rng = np.random.default_rng(seed)
    inputs = None if sample else contract(resolve(bench_config()), "split").inputs
    with h5py.File(path, "w") as h5:
        writer = TableWriter(h5, compression)
        for first in range(0, n, BLOCK):
            label = SAMPLES[sample] if sample else None
            block = synthetic_block(min(BLOCK, n - first), first, rng, label, slots)
            for name, table in block.items():
                if inputs is not None:
                    fields = set(table.dtype.names)
                    table = with_derived(table, derived_fields(inputs, name, fields, str(path)))
                writer.append(name, table)
        if sample:  # as convert records them: the split checks its inputs are distinct files
            h5.attrs["sample"] = sample
            inputs = [{"path": str(path), "jets_written": n, "xxh3_64": f"synthetic-{seed}"}]
            h5.attrs["inputs"] = json.dumps(inputs)
    return path


def sample_files(
    workdir: Path, n: int, compression: str, slots: dict[str, int] = SLOTS
) -> list[str]:
    """Converted-style inputs of ``split``: one file per sample, ``n`` jets in all."""
    paths = []
    for i, name in enumerate(SAMPLES):
        size = n // len(SAMPLES) + (i < n % len(SAMPLES))
        path = workdir / f"{name}_{n}.h5"
        path = write_file(path, size, compression, 100 + i, name, slots)
        paths.append(str(path))
    return paths


def bench_config(inputs: list[str] | None = None, compression: str = "lzf") -> dict[str, Any]:
    """config/config.yaml with one sample per split input (``files`` point at the HDF5)."""
    config = shipped_config()
    config["samples"] = [
        {"name": name, "files": [path], "reader": "toy", "label": name}
        for name, path in zip(SAMPLES, inputs or [f"{s}.h5" for s in SAMPLES], strict=True)
    ]
    config["prepare"]["compression"] = compression
    return validate(config)


def raw_read(paths: list[str], chunk: int) -> int:
    """Read every dataset of ``paths`` in full, ``chunk`` jets at a time; return bytes read."""
    nbytes = 0
    for path in paths:
        with h5py.File(path, "r") as h5:
            for ds in h5.values():
                n = ds.shape[0]
                buffer = np.empty((min(chunk, n), *ds.shape[1:]), dtype=ds.dtype)
                for start in range(0, n, chunk):
                    stop = min(start + chunk, n)
                    ds.read_direct(buffer, np.s_[start:stop], np.s_[0 : stop - start])
                nbytes += ds.size * ds.dtype.itemsize
    return nbytes


def run_norm(config: dict[str, Any], train: str, workdir: Path, chunk: int) -> None:
    from hepsnake.prepare.norm import norm_stats

    c = contract(resolve(config), "norm")
    norm_stats(c, train, str(workdir / "norm.yaml"), str(workdir / "class.yaml"), chunk)


def run_split(config: dict[str, Any], inputs: list[str], workdir: Path) -> None:
    from hepsnake.prepare.split import SPLITS, split

    outputs = {s: str(workdir / f"{s}.h5") for s in SPLITS}
    for path in outputs.values():
        Path(path).unlink(missing_ok=True)  # as Snakemake does before rerunning a job
    split(contract(resolve(config), "split"), inputs, outputs, str(workdir / "summary.json"))


def child(args: argparse.Namespace) -> None:
    """(Subprocess) run one stage on ``--child-inputs``; print peak RSS before and after."""
    import hepsnake.prepare.norm
    import hepsnake.prepare.split  # noqa: F401  (import cost before the baseline)

    inputs = args.child_inputs.split(",")
    workdir = Path(args.workdir)
    base = peak_rss_mib()
    start = time.perf_counter()
    if args.child == "norm":
        run_norm(bench_config(), inputs[0], workdir, args.chunk)
    else:
        config = bench_config(inputs, args.compression)
        config["prepare"]["weights"]["mode"] = args.split_weights
        run_split(config, inputs, workdir)
    wall = time.perf_counter() - start
    print(json.dumps({"base_mib": base, "peak_mib": peak_rss_mib(), "wall_s": wall}))


def memory(
    stage: str, inputs: list[str], workdir: Path, args: argparse.Namespace
) -> tuple[str, float]:
    """Peak RSS of ``stage`` on ``inputs`` in a fresh Python process: one output line, MiB."""
    cmd = [sys.executable, __file__, "--child", stage, "--child-inputs", ",".join(inputs)]
    cmd += ["--workdir", str(workdir), "--compression", args.compression]
    cmd += ["--chunk", str(args.chunk), "--split-weights", args.split_weights]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    mem = json.loads(out.strip().splitlines()[-1])
    jets = 0
    for path in inputs:
        with h5py.File(path, "r") as h5:
            jets += h5["jets"].shape[0]
    base, peak = mem["base_mib"], mem["peak_mib"]
    line = (
        f"peak RSS {stage:<5} {jets:>9,d} jets {peak:>8.0f} MiB"
        f"  (after imports {base:.0f} MiB, {stage} +{peak - base:.0f} MiB, {mem['wall_s']:.1f} s)"
    )
    return line, peak


def bench(args: argparse.Namespace, workdir: Path) -> None:
    """Write the inputs, time raw reads, norm_stats and split, then measure peak memory."""
    mib = 1024**2
    n = args.jets
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} on {os.cpu_count()} cores (timings need a quiet machine)")
    start = time.perf_counter()
    train = str(write_file(workdir / f"train_{n}.h5", n, args.compression, 1))
    inputs = sample_files(workdir, n, args.compression)
    print(f"wrote train + split inputs in {time.perf_counter() - start:.1f} s")
    config = bench_config(inputs, args.compression)

    warm_page_cache([train, *inputs])
    nbytes = raw_read([train], args.chunk)  # warm-up
    run_norm(config, train, workdir, args.chunk)
    (t_raw, c_raw), (t_norm, c_norm) = race(
        args.repeat,
        partial(raw_read, [train], args.chunk),
        partial(run_norm, config, train, workdir, args.chunk),
    )
    size = Path(train).stat().st_size
    print(f"jets                     {n:>12,d}  (tracks x40 ~10 valid, clusters x30 ~8 valid)")
    print(
        f"train file               {size / mib:>12.1f} MiB  ({args.compression}), in memory"
        f" {nbytes / mib:.1f} MiB"
    )
    print(f"chunk                    {args.chunk:>12,d} jets")
    print(
        f"raw h5py read            {t_raw:>12.3f} s   {n / t_raw:>12,.0f} jets/s"
        f"  {nbytes / mib / t_raw:>7,.0f} MiB/s  (best of {args.repeat}; CPU {c_raw:.3f} s)"
    )
    print(
        f"norm_stats               {t_norm:>12.3f} s   {n / t_norm:>12,.0f} jets/s"
        f"  (CPU {c_norm:.3f} s: reads run in a second thread)"
    )
    print(f"norm / raw throughput    {t_raw / t_norm:>12.2f}     (target >= 0.8)")

    in_bytes = raw_read(inputs, args.chunk)
    run_split(config, inputs, workdir)  # warm-up
    (t_raw_in, _), (t_split, _) = race(
        args.repeat,
        partial(raw_read, inputs, args.chunk),
        partial(run_split, config, inputs, workdir),
    )
    print(
        f"split inputs             {len(inputs):>12d} files, {n:,d} jets,"
        f" {in_bytes / mib:.1f} MiB in memory"
    )
    print(f"raw h5py read of inputs  {t_raw_in:>12.3f} s   {n / t_raw_in:>12,.0f} jets/s")
    print(f"split, writing {args.compression:<9} {t_split:>12.3f} s   {n / t_split:>12,.0f} jets/s")
    print(f"split / raw throughput   {t_raw_in / t_split:>12.2f}")
    if args.no_memory:
        return

    train2 = str(write_file(workdir / f"train_{2 * n}.h5", 2 * n, args.compression, 2))
    print(memory("norm", [train], workdir, args)[0])
    print(memory("norm", [train2], workdir, args)[0])
    half = sample_files(workdir, n // 2, args.compression)
    print(memory("split", half, workdir, args)[0])
    print(memory("split", inputs, workdir, args)[0])


def split_memory(args: argparse.Namespace, workdir: Path) -> None:
    """Peak RSS of split at each ``--split-memory`` size, on samples whose only collection is
    ``tracks`` with ``--split-slots`` slots (constituents pass through fixed-size buckets, so
    slots only change the run time); the per-jet slope of the first and last size and its
    linear extrapolation to 1e8 jets."""
    sizes = [int(float(x)) for x in args.split_memory.split(",")]
    points = []
    for n in sizes:
        start = time.perf_counter()
        inputs = sample_files(workdir, n, args.compression, {"tracks": args.split_slots})
        written = time.perf_counter() - start
        line, peak = memory("split", inputs, workdir, args)
        print(f"{line}  (inputs written in {written:.0f} s)", flush=True)
        points.append((n, peak))
        for path in [*inputs, *workdir.glob("*.h5")]:
            Path(path).unlink(missing_ok=True)
    (n0, p0), (n1, p1) = points[0], points[-1]
    slope = (p1 - p0) / (n1 - n0) * 1024**2  # bytes per jet
    at = p0 + (1e8 - n0) * slope / 1024**2
    print(
        f"split peak RSS slope {slope:.1f} B/jet ({n0:,d} -> {n1:,d} jets); linear"
        f" extrapolation to 100,000,000 jets: {at / 1024:.2f} GiB (target <= 1.5 GB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=500_000, help="jets in the train file")
    parser.add_argument("--workdir", help="where files are written (default: a temp dir)")
    parser.add_argument("--compression", default="lzf", choices=["none", "lzf", "gzip"])
    parser.add_argument("--chunk", type=int, default=CHUNK, help="jets per read (norm_stats)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per measurement (best)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument(
        "--split-memory",
        help="only measure split's peak RSS at these jet counts, e.g. 1e6,3e6, and extrapolate",
    )
    parser.add_argument("--split-slots", type=int, default=4, help="track slots (--split-memory)")
    parser.add_argument(
        "--split-weights",
        default="none",
        choices=["none", "pt_to_signal"],
        help="prepare.weights.mode of the split runs (the shipped config's: none)",
    )
    parser.add_argument("--child", choices=["norm", "split"], help=argparse.SUPPRESS)
    parser.add_argument("--child-inputs", help=argparse.SUPPRESS)
    args = parse_args(parser, {"jets": 3000, "repeat": 1})
    if args.child:
        child(args)
        return
    with work_directory(args.workdir) as workdir:
        (split_memory if args.split_memory else bench)(args, workdir)


if __name__ == "__main__":
    main()
