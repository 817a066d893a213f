"""Benchmark of the training loader :class:`hepsnake.data.loader.H5Batches` against a raw read.

Writes a synthetic prepared-style file with :class:`hepsnake.io.h5.TableWriter` (chunks of
1000 jets): ``jets`` (N,) with label, train_weight and a few floats, ``tracks`` (N, 40) with
``valid`` plus ``--tracks-vars`` float32 variables, ~15 real tracks per jet packed first,
padding zero. Then, from a warm page cache, best of ``--repeat``, contenders in turn:

* a raw h5py read: the same 1000-jet slices of every dataset the loader reads, ``read_direct``
  into preallocated buffers, decompression included: what any reader of the file pays;
* one full pass of ``H5Batches`` (batch 1000, every track variable as input).

Prints jets/s of both and their ratio, for ``--compression`` and for an uncompressed copy.
Target: >= 600k jets/s and >= 0.75x the raw read. ``--file`` times an existing prepared file
instead, with the ``inputs`` of config/config.yaml. Run by hand, e.g.
``python benchmarks/loader.py --jets 200000``; ``--smoke`` (a test runs it) only checks that the
script runs.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no busy-waiting threads

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml
from _common import parse_args, warm_page_cache

from hepsnake.config.contracts import inputs as typed_inputs
from hepsnake.data.loader import H5Batches, InputSpec
from hepsnake.io.h5 import TableWriter

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
BATCH = 1000
SLOTS = 40
MEAN_TRACKS = 15
JET_FLOATS = ["pt", "eta", "phi", "mass", "width"]
BLOCK = 50_000  # jets generated and appended at a time


def write_file(path: Path, n: int, n_vars: int, compression: str, seed: int = 1) -> None:
    """``n`` synthetic jets with (n, 40) tracks of ``n_vars`` float32 variables."""
    rng = np.random.default_rng(seed)
    jet_dtype = np.dtype(
        [(f, np.float32) for f in JET_FLOATS]
        + [("flavour_label", np.int32), ("train_weight", np.float32), ("eventNumber", np.int64)]
    )
    track_dtype = np.dtype([("valid", bool)] + [(f"v{i}", np.float32) for i in range(n_vars)])
    with h5py.File(path, "w") as h5:
        writer = TableWriter(h5, compression, chunk_jets=BATCH)
        for first in range(0, n, BLOCK):
            m = min(BLOCK, n - first)
            jets = np.zeros(m, jet_dtype)
            for f in JET_FLOATS:
                jets[f] = rng.normal(0.0, 1.0, m)
            jets["flavour_label"] = rng.integers(0, 3, m)
            jets["train_weight"] = rng.uniform(0.5, 1.5, m)
            jets["eventNumber"] = np.arange(first, first + m)
            tracks = np.zeros((m, SLOTS), track_dtype)
            valid = np.arange(SLOTS) < np.minimum(rng.poisson(MEAN_TRACKS, m), SLOTS)[:, None]
            tracks["valid"] = valid
            for i in range(n_vars):
                tracks[f"v{i}"][valid] = rng.normal(0.0, 1.0, int(valid.sum()))
            writer.append("jets", jets)
            writer.append("tracks", tracks)


def synthetic_spec(n_vars: int) -> InputSpec:
    return InputSpec(
        variables={"jets": JET_FLOATS, "tracks": [f"v{i}" for i in range(n_vars)]},
        num_inputs={"tracks": SLOTS},
    )


def raw_read(path: str, datasets: list[str], batch: int) -> int:
    """Read ``datasets`` in slices of ``batch`` jets into fixed buffers; return jets read."""
    with h5py.File(path, "r") as h5:
        dss = [h5[d] for d in datasets]
        buffers = [np.empty((batch, *ds.shape[1:]), ds.dtype) for ds in dss]
        n = dss[0].shape[0]
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            for ds, buffer in zip(dss, buffers, strict=True):
                ds.read_direct(buffer, np.s_[start:stop], np.s_[0 : stop - start])
    return n


def loader_pass(path: str, spec: InputSpec, batch: int) -> int:
    """One epoch of ``H5Batches``; return jets seen."""
    return sum(len(b["label"]) for b in H5Batches(path, spec, batch))


def race(repeat: int, *fns: Callable[[], int]) -> list[tuple[float, float]]:
    """Best jets/s of each of ``fns`` over ``repeat`` rounds, run in turn, with its CPU s/jet.

    CPU time counts every thread of this process (the loader reads in a second thread).
    """
    best = [(0.0, 0.0)] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            jets = fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[i] = max(best[i], (jets / wall, cpu / jets))
    return best


def report(label: str, path: str, spec: InputSpec, repeat: int) -> None:
    datasets = sorted({spec.dataset(c) for c in spec.variables} | {"jets"})
    warm_page_cache([path])
    loader_pass(path, spec, BATCH)  # warm-up
    (raw, raw_cpu), (ours, our_cpu) = race(
        repeat, lambda: raw_read(path, datasets, BATCH), lambda: loader_pass(path, spec, BATCH)
    )
    mib = Path(path).stat().st_size / 1024**2
    print(f"{label:<28} file {mib:8.1f} MiB  datasets {', '.join(datasets)}")
    print(f"  raw h5py read_direct   {raw:>12,.0f} jets/s   CPU {raw_cpu * 1e6:6.2f} us/jet")
    print(f"  H5Batches              {ours:>12,.0f} jets/s   CPU {our_cpu * 1e6:6.2f} us/jet")
    print(f"  H5Batches / raw        {ours / raw:>12.2f}   (target >= 0.75, >= 600,000 jets/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200_000, help="jets in the synthetic file")
    parser.add_argument("--tracks-vars", type=int, default=20, help="float variables per track")
    parser.add_argument("--compression", default="lzf", choices=["none", "lzf", "gzip"])
    parser.add_argument("--file", help="an existing prepared file (config/config.yaml inputs)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per contender (best)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parse_args(parser, {"jets": 3000, "repeat": 1})
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, batch {BATCH}")
    if args.file:
        inputs = yaml.safe_load(CONFIG.read_text())["inputs"]
        spec = InputSpec.from_config(typed_inputs(inputs))
        report(Path(args.file).name, args.file, spec, args.repeat)
        return
    spec = synthetic_spec(args.tracks_vars)
    print(
        f"synthetic: {args.jets:,d} jets, tracks {SLOTS} x (valid + {args.tracks_vars} float32),"
        f" ~{MEAN_TRACKS} real per jet"
    )
    compressions = dict.fromkeys([args.compression, "none"])
    with tempfile.TemporaryDirectory(prefix="hepsnake-bench-") as tmp:
        for compression in compressions:
            path = str(Path(tmp) / f"train_{compression}.h5")
            write_file(Path(path), args.jets, args.tracks_vars, compression)
            report(f"compression {compression}", path, spec, args.repeat)
            Path(path).unlink()


if __name__ == "__main__":
    main()
