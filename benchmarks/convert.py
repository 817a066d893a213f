"""Benchmark of the ``convert`` stage against a raw uproot read of the same branches.

Writes a synthetic toy-like TTree (jet scalars, ~10 tracks and ~8 clusters per jet), then

* times the raw read: ``tree.iterate(branches, step_size=chunk_size, library="ak")`` from a
  freshly opened file (``array_cache=None``), which any reader has to do anyway;
* times the full :func:`hepsnake.convert.convert.convert` (cuts, padding, HDF5 writing,
  input checksum) of the same file to an HDF5 file (uncompressed by default);
* measures the peak RSS of a conversion in a fresh subprocess at N/2 and N jets, to show
  that memory does not grow with the input (chunked streaming).

Run by hand, e.g. ``python benchmarks/convert.py --jets 500000``. Not a test.
"""

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepsnake.config import validate

TREE = "jets"
JET_BRANCHES = {
    "pt": "jet_pt",
    "eta": "jet_eta",
    "phi": "jet_phi",
    "log_ratio": "jet_log_ratio",
    "time": "jet_time",
    "width": "jet_width",
    "eventNumber": "eventNumber",
    "mcEventWeight": "mcEventWeight",
    "truth_logp_qcd": "truth_logp_qcd",
    "truth_logp_sig": "truth_logp_sig",
    "truth_logp_bib": "truth_logp_bib",
    "truth_logp_sig_mS5": "truth_logp_sig_mS5",
    "truth_logp_sig_mS16": "truth_logp_sig_mS16",
    "truth_logp_sig_mS40": "truth_logp_sig_mS40",
    "truth_logp_sig_mS55": "truth_logp_sig_mS55",
}
# collection -> (branch prefix, variables, mean multiplicity)
COLLECTIONS = {
    "tracks": ("track", ["pt", "deta", "dphi", "d0", "z0"], 10),
    "clusters": ("cluster", ["e", "f_em", "time", "deta", "dphi"], 8),
}
ROOT_COMPRESSION = {"zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1), "none": None}


def synthetic_block(n: int, first: int, rng: np.random.Generator) -> dict[str, Any]:
    """``n`` toy-like jets as TTree branches (jagged collections as awkward records)."""
    branches: dict[str, Any] = {
        "jet_pt": (20.0 + rng.exponential(40.0, n)).astype(np.float32),  # ~10% fail the cuts
        "jet_eta": rng.uniform(-2.8, 2.8, n).astype(np.float32),
        "jet_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "jet_log_ratio": rng.normal(0.0, 1.0, n).astype(np.float32),
        "jet_time": rng.normal(0.0, 2.0, n).astype(np.float32),
        "jet_width": rng.exponential(0.1, n).astype(np.float32),
        "eventNumber": np.arange(first, first + n, dtype=np.int64) // 2 + 1,
        "mcEventWeight": rng.uniform(0.5, 1.5, n).astype(np.float32),
    }
    for key in JET_BRANCHES:
        if key.startswith("truth_logp"):
            branches[key] = rng.normal(-20.0, 5.0, n)  # float64, as the toy writes them
    for prefix, variables, mean in COLLECTIONS.values():
        counts = rng.poisson(mean, n)
        total = int(counts.sum())
        branches[prefix] = ak.zip(
            {
                v: ak.unflatten(rng.exponential(1.0, total).astype(np.float32), counts)
                for v in variables
            }
        )
    return branches


def write_tree(path: Path, n_jets: int, compression: str, block: int = 50_000) -> None:
    """Write ``n_jets`` synthetic jets as TTree ``jets``, ``block`` jets per ``extend``."""
    rng = np.random.default_rng(12345)
    with uproot.recreate(path, compression=ROOT_COMPRESSION[compression]) as f:
        for first in range(0, n_jets, block):
            branches = synthetic_block(min(block, n_jets - first), first, rng)
            if first == 0:
                f.mktree(
                    TREE,
                    {
                        k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                        for k, v in branches.items()
                    },
                )
            f[TREE].extend(branches)


def bench_config(path: Path, compression: str, chunk_size: int) -> dict[str, Any]:
    """A validated config with the ``toy`` flat reader mapping and one sample reading ``path``."""
    reader = {
        "type": "flat",
        "tree": TREE,
        "entry": "jet",
        "jets": dict(JET_BRANCHES),
        "collections": {
            name: {v: f"{prefix}_{v}" for v in variables}
            for name, (prefix, variables, _) in COLLECTIONS.items()
        },
    }
    config = {
        "class_names": ["qcd", "sig", "bib"],
        "samples": [{"name": "bench", "files": [str(path)], "reader": "toy", "label": "qcd"}],
        "readers": {"toy": reader},
        "convert": {
            "max_constituents": {"tracks": 40, "clusters": 30},
            "sort_by": {"tracks": "pt", "clusters": "e"},
            "cuts": ["pt > 20", "abs(eta) < 2.5"],
            "compression": compression,
            "chunk_size": chunk_size,
        },
    }
    return validate(config)


def branch_names(config: dict[str, Any]) -> list[str]:
    """Every branch the reader maps, as FlatSource reads them."""
    reader = config["readers"]["toy"]
    names = set(reader["jets"].values())
    names |= {b for m in reader["collections"].values() for b in m.values()}
    return sorted(names)


def raw_read(path: Path, branches: list[str], step: int) -> int:
    """Read ``branches`` chunk by chunk with plain uproot (fresh file, no cache); return entries."""
    n = 0
    with uproot.open(path, array_cache=None) as f:
        for arrays in f[TREE].iterate(branches, step_size=step, library="ak"):
            n += len(arrays)
    return n


def run_convert(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The full convert stage of the benchmark sample, progress bar off."""
    from hepsnake.convert.convert import convert

    return convert(
        config, "bench", workdir / "bench.h5", workdir / "bench.json", show_progress=False
    )


def best_of(repeat: int, fn: Any, *args: Any) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn(*args)``."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def warm_page_cache(path: Path) -> None:
    """Read the whole file once so that every timing starts from the page cache."""
    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    ``VmHWM`` belongs to the current address space, so unlike ``ru_maxrss`` it does not
    inherit the parent's high-water mark across ``vfork``/``exec`` (which ``subprocess`` uses).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024**2 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def child_memory(args: argparse.Namespace) -> None:
    """(Subprocess) convert ``--child``; print peak RSS after imports and after it, in MiB."""
    path = Path(args.child)
    config = bench_config(path, args.compression, args.chunk_size)
    from hepsnake.convert.convert import convert  # noqa: F401  (import cost before baseline)

    base = peak_rss_mib()
    report = run_convert(config, Path(args.workdir))
    peak = peak_rss_mib()
    print(json.dumps({"base_mib": base, "peak_mib": peak, "jets": report["jets"]}))


def measure_memory(path: Path, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Peak RSS of one conversion of ``path`` in a fresh Python process."""
    cmd = [sys.executable, __file__, "--child", str(path), "--workdir", str(workdir)]
    cmd += ["--compression", args.compression, "--chunk-size", str(args.chunk_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=500_000, help="jets in the synthetic tree")
    parser.add_argument("--workdir", help="where files are written (default: a temp dir)")
    parser.add_argument("--compression", default="none", choices=["none", "lzf", "gzip"])
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
    args = parser.parse_args()
    if args.child:
        child_memory(args)
        return

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hepsnake-bench-")
        args.workdir = tmp.name
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        bench(args, workdir)
    finally:
        if tmp is not None:
            tmp.cleanup()


def bench(args: argparse.Namespace, workdir: Path) -> None:
    """Write the input, time raw read and conversion, then measure peak memory."""
    path = workdir / f"synthetic_{args.jets}.root"
    start = time.perf_counter()
    write_tree(path, args.jets, args.input_compression)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    config = bench_config(path, args.compression, args.chunk_size)
    branches = branch_names(config)

    warm_page_cache(path)
    raw_read(path, branches, args.chunk_size)  # warm-up (imports, page cache)
    report = run_convert(config, workdir)  # warm-up
    t_raw = best_of(args.repeat, raw_read, path, branches, args.chunk_size)
    t_conv = best_of(args.repeat, run_convert, config, workdir)
    out_size = (workdir / "bench.h5").stat().st_size

    mib = 1024**2
    print(f"jets                     {args.jets:>12,d}  ({report['jets']:,d} pass the cuts)")
    print(f"branches                 {len(branches):>12d}  (+ 2 counters)")
    print(f"input size               {path.stat().st_size / mib:>12.1f} MiB"
          f"  ({args.input_compression})")
    print(f"output size              {out_size / mib:>12.1f} MiB  ({args.compression})")
    print(f"chunk size               {args.chunk_size:>12,d}")
    print(f"raw uproot read          {t_raw:>12.3f} s   (best of {args.repeat})")
    print(f"conversion               {t_conv:>12.3f} s   (best of {args.repeat})")
    print(f"ratio conversion/raw     {t_conv / t_raw:>12.2f}     (target <= 1.5)")
    print(f"raw read throughput      {args.jets / t_raw:>12,.0f} jets/s")
    print(f"conversion throughput    {args.jets / t_conv:>12,.0f} jets/s")
    if args.no_memory:
        return

    half = workdir / f"synthetic_{args.jets // 2}.root"
    write_tree(half, args.jets // 2, args.input_compression)
    for p in (half, path):
        n = int(p.stem.split("_")[1])
        mem = measure_memory(p, workdir, args)
        print(
            f"peak RSS convert {n:>9,d} {mem['peak_mib']:>10.0f} MiB"
            f"  (after imports {mem['base_mib']:.0f} MiB,"
            f" conversion +{mem['peak_mib'] - mem['base_mib']:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
