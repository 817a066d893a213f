"""Benchmark of the ``convert`` stage against a raw uproot read of the same branches.

Writes a synthetic toy-like TTree (jet scalars, ~10 tracks and ~8 clusters per jet), then

* times the raw read: ``tree.iterate(branches, step_size=chunk_size, library="ak")`` from a
  freshly opened file (``array_cache=None``), which any reader has to do anyway;
* times the full :func:`hepsnake.convert.convert.convert` (cuts, padding, HDF5 writing,
  input checksum) of the same file to an HDF5 file (uncompressed by default);
* measures the peak memory of a conversion in a fresh subprocess at N/2 and N jets, to show
  that it does not grow with the input (chunked streaming): the peak RSS, and the
  tracemalloc peak, which is blind to glibc heap fragmentation (that makes the RSS creep up
  by some tens of MiB over the first chunks before it levels off).

Times are the best of ``--repeat`` alternating runs with the input in the page cache; each
conversion starts after the previous output is deleted and dirty pages are synced (untimed).

Run by hand, e.g. ``python benchmarks/convert.py --jets 500000``; ``--smoke`` (a test runs it)
only checks that the script runs.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
from _common import (
    parse_args,
    peak_rss_mib,
    shipped_config,
    timed,
    warm_page_cache,
    work_directory,
)

from hepsnake.config import validate

READER = "toy"  # the reader of config/config.yaml whose branch mapping the synthetic tree follows
MULTIPLICITY = {"tracks": 10, "clusters": 8}  # mean constituents per jet
ROOT_COMPRESSION = {"zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1), "none": None}


def jet_values(branch: str, n: int, first: int, rng: np.random.Generator) -> np.ndarray:
    """Values of one per-jet branch with the toy's dtypes (truth densities are float64)."""
    if branch == "eventNumber":
        return np.arange(first, first + n, dtype=np.int64) // 2 + 1
    if branch.startswith("truth_logp"):
        return rng.normal(-20.0, 5.0, n)
    if branch == "jet_pt":
        return (20.0 + rng.exponential(40.0, n)).astype(np.float32)  # ~10% fail the cuts
    if branch == "jet_eta":
        return rng.uniform(-2.8, 2.8, n).astype(np.float32)
    return rng.normal(1.0, 0.5, n).astype(np.float32)


def synthetic_block(
    reader: dict[str, Any], n: int, first: int, rng: np.random.Generator
) -> dict[str, Any]:
    """``n`` toy-like jets as TTree branches; a collection ``{var: prefix_var}`` is written as
    an awkward record ``prefix`` (branches ``prefix_var`` and counter ``nprefix``), as the toy.
    """
    branches: dict[str, Any] = {b: jet_values(b, n, first, rng) for b in reader["jets"].values()}
    for name, mapping in reader["collections"].items():
        prefix = next(iter(mapping.values())).split("_")[0]
        counts = rng.poisson(MULTIPLICITY.get(name, 8), n)
        total = int(counts.sum())
        branches[prefix] = ak.zip(
            {
                b[len(prefix) + 1 :]: ak.unflatten(
                    rng.exponential(1.0, total).astype(np.float32), counts
                )
                for b in mapping.values()
            }
        )
    return branches


def write_tree(
    path: Path, reader: dict[str, Any], n_jets: int, compression: str, block: int = 50_000
) -> None:
    """Write ``n_jets`` synthetic jets as the reader's tree, ``block`` jets per ``extend``."""
    rng = np.random.default_rng(12345)
    with uproot.recreate(path, compression=ROOT_COMPRESSION[compression]) as f:
        for first in range(0, n_jets, block):
            branches = synthetic_block(reader, min(block, n_jets - first), first, rng)
            if first == 0:
                types = {
                    k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                    for k, v in branches.items()
                }
                f.mktree(reader["tree"], types)
            f[reader["tree"]].extend(branches)


def bench_config(path: Path, compression: str, chunk_size: int) -> dict[str, Any]:
    """config/config.yaml with one sample, ``path`` read by the ``toy`` reader; validated."""
    config = shipped_config()
    config["samples"] = [{"name": "bench", "files": [str(path)], "reader": READER, "label": "qcd"}]
    config["convert"].update(compression=compression, chunk_size=chunk_size)
    return validate(config)


def branch_names(config: dict[str, Any]) -> list[str]:
    """Every branch the reader maps, as FlatSource reads them."""
    reader = config["readers"][READER]
    names = set(reader["jets"].values())
    names |= {b for m in reader["collections"].values() for b in m.values()}
    return sorted(names)


def raw_read(path: Path, tree: str, branches: list[str], step: int) -> int:
    """Read ``branches`` chunk by chunk with plain uproot (fresh file, no cache); return entries."""
    n = 0
    with uproot.open(path, array_cache=None) as f:
        for arrays in f[tree].iterate(branches, step_size=step, library="ak"):
            n += len(arrays)
    return n


def remove_outputs(workdir: Path) -> None:
    """Delete the previous conversion's outputs, as Snakemake does before rerunning a job.

    Renaming a new output onto an existing one frees the old file inside the timed rename.
    """
    for name in ("bench.h5", "bench.json"):
        (workdir / name).unlink(missing_ok=True)
    os.sync()  # flush earlier runs' dirty pages: writeback would throttle the next run


def run_convert(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The full convert stage of the benchmark sample, progress bar off."""
    from hepsnake.config import contract, resolve
    from hepsnake.convert.convert import convert

    c = contract(resolve(config), "convert", sample="bench")
    return convert(c, workdir / "bench.h5", workdir / "bench.json", show_progress=False)


def child_memory(args: argparse.Namespace) -> None:
    """(Subprocess) convert ``--child`` once; print its memory figures in MiB as JSON.

    ``--child-trace``: the tracemalloc peak (every numpy buffer and Python object the
    conversion holds at once, blind to allocator fragmentation) instead of the peak RSS.
    """
    path = Path(args.child)
    config = bench_config(path, args.compression, args.chunk_size)
    from hepsnake.convert.convert import convert  # noqa: F401  (import cost before baseline)

    remove_outputs(Path(args.workdir))
    if args.child_trace:
        tracemalloc.start()
        run_convert(config, Path(args.workdir))
        peak = tracemalloc.get_traced_memory()[1] / 1024**2
        print(json.dumps({"traced_mib": peak}))
        return
    base = peak_rss_mib()
    run_convert(config, Path(args.workdir))
    print(json.dumps({"base_mib": base, "peak_mib": peak_rss_mib()}))


def measure_memory(path: Path, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Peak RSS and tracemalloc peak of a conversion of ``path``, each in a fresh process."""
    cmd = [sys.executable, __file__, "--child", str(path), "--workdir", str(workdir)]
    cmd += ["--compression", args.compression, "--chunk-size", str(args.chunk_size)]
    result: dict[str, float] = {}
    for extra in ([], ["--child-trace"]):
        out = subprocess.run(cmd + extra, check=True, capture_output=True, text=True).stdout
        result.update(json.loads(out.strip().splitlines()[-1]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=500_000, help="jets in the synthetic tree")
    parser.add_argument("--workdir", help="where files are written (default: a temp dir)")
    parser.add_argument(
        "--compression", default="none", choices=["none", "lzf", "gzip"], help="HDF5 output"
    )
    parser.add_argument("--chunk-size", type=int, default=100_000, help="entries per chunk")
    parser.add_argument(
        "--input-compression",
        default="zlib",
        choices=sorted(ROOT_COMPRESSION),
        help="compression of the synthetic ROOT file (the toy writes uproot's default, zlib)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timings per measurement (best)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-trace", action="store_true", help=argparse.SUPPRESS)
    args = parse_args(parser, {"jets": 2000, "chunk_size": 500, "repeat": 1})
    if args.child:
        child_memory(args)
        return

    with work_directory(args.workdir) as workdir:
        bench(args, workdir)


def bench(args: argparse.Namespace, workdir: Path) -> None:
    """Write the input, time raw read and conversion, then measure peak memory."""
    path = workdir / f"synthetic_{args.jets}.root"
    config = bench_config(path, args.compression, args.chunk_size)
    reader = config["readers"][READER]
    start = time.perf_counter()
    write_tree(path, reader, args.jets, args.input_compression)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    branches = branch_names(config)
    tree = reader["tree"]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    warm_page_cache([path])
    raw_read(path, tree, branches, args.chunk_size)  # warm-up (imports, page cache)
    remove_outputs(workdir)
    report = run_convert(config, workdir)  # warm-up
    # alternate the two measurements so that a change of machine load hits both alike
    raws, convs = [], []
    for _ in range(args.repeat):
        raws.append(timed(raw_read, path, tree, branches, args.chunk_size))
        remove_outputs(workdir)
        convs.append(timed(run_convert, config, workdir))
    (raw, cpu_raw), (conv, cpu_conv) = min(raws), min(convs)
    out_size = (workdir / "bench.h5").stat().st_size

    mib = 1024**2
    rows = [
        ("jets", f"{args.jets:,d}", f"{report['jets']:,d} pass the cuts"),
        ("branches", f"{len(branches)}", "+ counters"),
        ("input size", f"{path.stat().st_size / mib:.1f} MiB", args.input_compression),
        ("output size", f"{out_size / mib:.1f} MiB", args.compression),
        ("chunk size", f"{args.chunk_size:,d}", "entries"),
        ("CPUs, load before", f"{os.cpu_count()}, {load:.2f}", "1-min load average"),
        ("raw uproot read", f"{raw:.3f} s", f"CPU {cpu_raw:.2f} s, best of {args.repeat}"),
        ("conversion", f"{conv:.3f} s", f"CPU {cpu_conv:.2f} s, best of {args.repeat}"),
        ("ratio conversion/raw", f"{conv / raw:.2f}", "target <= 1.5"),
        ("raw read throughput", f"{args.jets / raw:,.0f}", "jets/s"),
        ("conversion throughput", f"{args.jets / conv:,.0f}", "jets/s"),
    ]
    for label, value, note in rows:
        print(f"{label:<24} {value:>14}  ({note})")
    if args.no_memory:
        return

    half = workdir / f"synthetic_{args.jets // 2}.root"
    write_tree(half, reader, args.jets // 2, args.input_compression)
    print("peak memory of one conversion in a fresh process (MiB):")
    print(f"{'jets':>10} {'RSS':>8} {'imports':>8} {'+convert':>9} {'tracemalloc':>12}")
    for p, n in ((half, args.jets // 2), (path, args.jets)):
        mem = measure_memory(p, workdir, args)
        print(
            f"{n:>10,d} {mem['peak_mib']:>8.0f} {mem['base_mib']:>8.0f}"
            f" {mem['peak_mib'] - mem['base_mib']:>9.0f} {mem['traced_mib']:>12.0f}"
        )


if __name__ == "__main__":
    main()
