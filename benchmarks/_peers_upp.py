"""UPP's side of the preparation comparison: the same converted files through UPP
(``preprocess --split all``: train/val/test by eventNumber, merged, normalisation dict) and
through hepsnake's split + norm, each in a fresh process; wall time and peak RSS.

The inputs are converted-style files written by ``benchmarks/prepare.py`` (one per class
``qcd``, ``sig``, ``bib``: ``jets``, ``tracks`` (40 slots), ``clusters`` (30), lzf, as
hepsnake's convert writes them). UPP reads the classes from hepsnake's ``classes.yaml`` (its
``class_config``: a cut on ``flavour_label`` per class). Two settings:

* ``none``: no resampling (UPP: no ``resampling`` block, every jet kept; hepsnake:
  ``prepare.resample: none``);
* ``up``: a comparable resampling. UPP ``countup`` upsamples each class to the signal's
  (pt, eta) distribution and count; hepsnake's ``prepare.resample: up`` repeats jets to the
  largest class's count (its kinematic matching is by weights, ``prepare.weights``, not by
  resampling). Same direction and size of output, not the same operation.

What differs by default: UPP computes the norm dict on ``num_global_objects_estimate_norm``
jets (its default 10⁶), hepsnake on every training jet; UPP writes lzf, hepsnake uncompressed
(its ``prepare.compression`` default).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import yaml
from prepare import FIELDS, SAMPLES, sample_files

from hepsnake.prepare.norm import flavour_classes

BENCHMARKS = Path(__file__).resolve().parent
JET_INPUTS = ["pt", "eta", "log_ratio", "time", "width"]
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
with open(LOG, "w") as log:
    code = subprocess.run(sys.argv[1:], stdout=log, stderr=subprocess.STDOUT).returncode
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": code, "wall_s": wall, "peak_mib": peak}))
"""
HEPSNAKE = """
import sys
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from prepare import bench_config
from hepsnake.config import contract, resolve
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
inputs, out, resample = {inputs!r}, Path({out!r}), {resample!r}
config = bench_config(inputs, "none")
config["prepare"]["resample"] = resample
if resample != "none":  # resampling replaces the class-balancing weights
    config["prepare"]["weights"]["balance_classes"] = False
outputs = {{s: str(out / f"{{s}}.h5") for s in SPLITS}}
resolved = resolve(config)
split(contract(resolved, "split"), inputs, outputs, str(out / "summary.json"))
norm = contract(resolved, "norm")
norm_stats(norm, outputs["train"], str(out / "norm.yaml"), str(out / "class.yaml"))
"""


def upp_config(inputs: list[str], out: Path, resample: str, classes: Path) -> dict[str, Any]:
    """UPP's config for ``inputs`` (one per class of :data:`SAMPLES`, in that order)."""
    n_train = {}
    for name, path in zip(SAMPLES, inputs, strict=True):
        with h5py.File(path) as h5:
            n_train[name] = h5["jets"].shape[0]
    # countup reads each class once: request what UPP's estimate of the training jets after
    # its cuts allows (~80 % of each file), with a margin
    target = int(0.75 * min(n_train.values()))
    components = [
        {
            "region": {"name": "all", "cuts": [["pt", ">", 0]]},
            "sample": {"name": name, "pattern": Path(path).name},
            "classes": [name],
            "num_global_objects": -1 if resample == "none" else target,
        }
        for name, path in zip(SAMPLES, inputs, strict=True)
    ]
    config: dict[str, Any] = {
        "variables": {
            "jets": {"inputs": JET_INPUTS, "labels": ["eventNumber", "train_weight"]},
            **{c: {"inputs": fields} for c, fields in FIELDS.items()},
        },
        "global_cuts": {
            "train": [["eventNumber", "%10<=", 7]],
            "val": [["eventNumber", "%10==", 8]],
            "test": [["eventNumber", "%10==", 9]],
        },
        "components": components,
        "global": {
            "base_dir": str(out),
            "ntuple_dir": str(Path(inputs[0]).parent),
            "components_dir": str(out / "components"),
            "out_dir": str(out / "output"),
            "class_config": str(classes),
        },
    }
    if resample != "none":
        config["resampling"] = {
            "target": "sig",
            "method": "countup",
            "sampling_fraction": 1.0,
            "variables": {
                "pt": {"bins": [[20, 420, 40]]},
                "eta": {"bins": [[-2.5, 2.5, 10]]},
            },
        }
    return config


def measure(cmd: list[str], log: Path) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB, the largest of the process and its waited children)
    of ``cmd`` in a fresh process; raises with the log's tail when it fails."""
    wrapper = [sys.executable, "-c", MEASURE.replace("LOG", repr(str(log)))]
    out = subprocess.run([*wrapper, *cmd], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["code"]:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(cmd[:3])} …` failed (exit {result['code']}):\n{tail}")
    return result


def run_upp(upp_bin: Path, inputs: list[str], out: Path, resample: str) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    classes = out / "classes.yaml"
    classes.write_text(yaml.safe_dump(flavour_classes(list(SAMPLES)), sort_keys=False))
    path = out / "upp.yaml"
    path.write_text(yaml.safe_dump(upp_config(inputs, out, resample, classes), sort_keys=False))
    cmd = [str(upp_bin / "preprocess"), "--config", str(path), "--split", "all", "--no-plot"]
    return measure(cmd, out / "upp.log")


def run_hepsnake(inputs: list[str], out: Path, resample: str) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    code = HEPSNAKE.format(
        benchmarks=str(BENCHMARKS), inputs=inputs, out=str(out), resample=resample
    )
    return measure([sys.executable, "-c", code], out / "hepsnake.log")


def bench(workdir: Path, upp_bin: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Per size and resampling setting: UPP then hepsnake (then hepsnake then UPP for the
    second setting, so a load drift hits both alike); rows of the table as dicts."""
    rows = []
    for n in sizes:
        data = workdir / f"inputs_{n}"
        data.mkdir(parents=True, exist_ok=True)
        inputs = sample_files(data, n, "lzf")
        for i, resample in enumerate(("none", "up")):
            order = ("upp", "hepsnake") if i == 0 else ("hepsnake", "upp")
            result = {}
            for side in order:
                out = workdir / f"{side}_{n}_{resample}"
                result[side] = (
                    run_upp(upp_bin, inputs, out, resample)
                    if side == "upp"
                    else run_hepsnake(inputs, out, resample)
                )
                shutil.rmtree(out)  # GBs at 10⁷ jets: only the figures are kept
            upp, ours = result["upp"], result["hepsnake"]
            label = "no resampling" if resample == "none" else "upsampling (UPP countup)"
            print(f"prepare {n:,d} jets, {label}: UPP {upp}, hepsnake {ours}", flush=True)
            rows.append(
                {
                    "figure": f"prepare {n:,d} jets, {label}: jets/s",
                    "peer": "UPP",
                    "peer_value": n / upp["wall_s"],
                    "ours": n / ours["wall_s"],
                    "unit": "jets/s",
                    "higher_is_better": True,
                    "target": 1.0,
                    "note": f"wall UPP {upp['wall_s']:.1f} s, hepsnake {ours['wall_s']:.1f} s",
                }
            )
            rows.append(
                {
                    "figure": f"prepare {n:,d} jets, {label}: peak RSS",
                    "peer": "UPP",
                    "peer_value": upp["peak_mib"],
                    "ours": ours["peak_mib"],
                    "unit": "MiB",
                    "higher_is_better": False,
                    "target": 1.0,
                }
            )
        for path in data.glob("*.h5"):
            path.unlink()
    return rows
