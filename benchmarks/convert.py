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
import yaml

from hepsnake.config import validate

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
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
    config = yaml.safe_load(CONFIG.read_text())
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


def run_convert(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The full convert stage of the benchmark sample, progress bar off."""
    from hepsnake.convert.convert import convert

    return convert(
        config, "bench", workdir / "bench.h5", workdir / "bench.json", show_progress=False
    )


def best_of(repeat: int, fn: Any, *args: Any, setup: Any = None) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn(*args)`` (``setup()`` untimed)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
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
    config = bench_config(path, args.compression, args.chunk_size)
    reader = config["readers"][READER]
    start = time.perf_counter()
    write_tree(path, reader, args.jets, args.input_compression)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    branches = branch_names(config)
    tree = reader["tree"]

    warm_page_cache(path)
    raw_read(path, tree, branches, args.chunk_size)  # warm-up (imports, page cache)
    report = run_convert(config, workdir)  # warm-up
    t_raw = best_of(args.repeat, raw_read, path, tree, branches, args.chunk_size)
    t_conv = best_of(
        args.repeat, run_convert, config, workdir, setup=lambda: remove_outputs(workdir)
    )
    out_size = (workdir / "bench.h5").stat().st_size

    mib = 1024**2
    print(f"jets                     {args.jets:>12,d}  ({report['jets']:,d} pass the cuts)")
    print(f"branches                 {len(branches):>12d}  (+ counters)")
    print(
        f"input size               {path.stat().st_size / mib:>12.1f} MiB"
        f"  ({args.input_compression})"
    )
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
    write_tree(half, reader, args.jets // 2, args.input_compression)
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
