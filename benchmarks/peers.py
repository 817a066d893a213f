"""Head to head with the peers on the same files: Salt's training and ONNX, UPP's
preparation, and hepsnake's per-job start-up, side by side in one run.

    python benchmarks/peers.py [--smoke] [--sections train onnx prepare startup]
        [--tasks jet origin] [--seeds 1 2 3] [--jets 60000] [--epochs 5]
        [--prepare-jets 1e6,1e7] [--workdir DIR]

The peers run in their own venvs (``benchmarks/_peers_env.py``: built once, cached under
``~/.cache/hepsnake-peers``; ``--smoke`` skips a peer whose venv cannot be built, with one
line saying why). Sections:

* ``train``: the toy (tracks and clusters) simulated, converted, split and normalised by
  hepsnake, then the same GN2-like architecture (``config/models/gn2.yaml`` with gated dense
  blocks; see :mod:`_peers_salt` for what differs by design) trained by hepsnake and by
  ``salt fit`` on those files, with and without the track-origin task, same batch, epochs and
  threads (``--threads``, default 2); each epoch's training part timed by the same callback
  (:mod:`_peers_timing`). ``--tasks`` picks the variants (``jet``: jet only, ``origin``: with
  the track-origin task), ``--seeds`` the training seeds of both sides (each seed trains both).
  Figures: jets/s (median over the epochs after the first; over seeds, the median) and the
  test jet AUC (signal vs QCD, log p_sig/p_qcd; over seeds, the mean of each side and the
  difference of the means ± its error), beside the toy's Bayes-optimal AUC.
* ``onnx``: Salt's ``to_onnx`` and hepsnake's Athena-layout export of the trained
  jet-classification models; ONNX Runtime latency per jet at 0, 10 and 40 tracks (and
  0, 8, 30 clusters: the toy's 40 : 30 slots), batch 1, one thread, models interleaved.
* ``prepare``: UPP against hepsnake's split + norm on the same converted files
  (:mod:`_peers_upp`).
* ``startup``: ``benchmarks/startup.py`` (every verb but train within 3 s).

Ends with the table of ``benchmarks/README.md`` (figure, peer, hepsnake, ratio, target, met)
and the load average before and after: on a shared machine every ratio is measured side by
side, but a figure whose two sides ran minutes apart can still move with the load.
"""

import os
import re

# idle OpenMP threads sleep instead of spinning, as in Salt's runs (environment()): on a shared
# machine spinning would count as CPU time (read when torch loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _peers_env
import _peers_salt
import _peers_upp
import h5py
import hdf5plugin  # noqa: F401  (Salt writes its predictions with a plugin filter)
import numpy as np
from _common import shipped_config, work_directory
from _peers_timing import EpochTimer

REPO = Path(__file__).resolve().parents[1]
HEPSNAKE_ONNX = "hepsnakeGN2"
EPS = 1e-12
TRACKS = (0, 10, 40)  # constituent counts of the latency figure
VERBS = ("simulate", "convert", "split", "norm", "train", "predict", "evaluate", "export", "report")
VARIANTS = {"jet": "jet only", "origin": "jet + track origin"}  # --tasks
SMOKE = {"jets": 3000, "epochs": 1, "batch": 250, "prepare_jets": "2e4", "latency_calls": 20}


@dataclass
class Row:
    """One line of the table: a figure, the peer's value, hepsnake's, their ratio."""

    figure: str
    peer: str
    peer_value: float | None
    ours: float | None
    unit: str
    higher_is_better: bool
    target: float | None  # the ratio hepsnake / peer must reach (or stay under)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_value is None or self.ours is None or not self.peer_value:
            return None
        return self.ours / self.peer_value

    @property
    def met(self) -> str:
        if self.target is None or self.ratio is None:
            return "–"
        ok = self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target
        return "met" if ok else "NOT met"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit in ("AUC", "ΔAUC"):
        return f"{value:.4f}"
    return f"{value:,.3g} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


# ---------------------------------------------------------------- training


def prepared(root: Path, n_jets: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The toy at QCD : BIB : signal (mS 16) = 5 : 2 : 3, through convert, split and norm;
    the config and the files both sides read."""
    from hepsnake.simulate.prepared import prepared_toy

    config = shipped_config() | {"model_dir": str(REPO / "config" / "models")}
    jets = {"qcd": int(n_jets * 0.5), "bib": int(n_jets * 0.2), "sig": int(n_jets * 0.3)}
    config, outputs = prepared_toy(config, root, jets, 7)
    files = outputs | {"norm": str(root / "norm.yaml"), "class_dict": str(root / "class.yaml")}
    return config, files


def hepsnake_model(
    config: dict[str, Any], aux: bool, epochs: int, batch: int, seed: int | None = None
) -> dict[str, Any]:
    """gn2.yaml with gated dense blocks (Salt's GN2), a plain track-origin head (Salt has no
    gated mixture) or none, ``epochs`` epochs without early stopping, batch ``batch``, training
    seed ``seed`` (None: gn2.yaml's)."""
    from hepsnake.config import load_model

    model = copy.deepcopy(load_model(config, "gn2"))
    net = model["model"]
    net["encoder"]["gated"] = True
    keep = []
    for task in net["tasks"]:
        if task["type"] == "jet_classification":
            keep.append(task)
        elif aux and task.get("name") == "track_origin":
            keep.append(task | {"mixture": 1})
    net["tasks"] = keep
    model["training"] |= {"max_epochs": epochs, "batch_size": batch, "early_stopping": None}
    if seed is not None:
        model["training"]["seed"] = seed
    return model


def jet_auc(scores: np.ndarray, labels: np.ndarray, names: list[str]) -> float:
    """Signal-vs-QCD AUC of ``scores`` (hepsnake's one AUC function)."""
    from hepsnake.roc import auc

    sig, qcd = labels == names.index("sig"), labels == names.index("qcd")
    return auc(scores[sig], scores[qcd])  # every jet counts once


def test_jets(test: str) -> np.ndarray:
    with h5py.File(test) as h5:
        return h5["jets"][:]


def model_auc(predictions: Path, jets: np.ndarray, names: list[str]) -> float:
    """The AUC of a predictions file (hepsnake's or Salt's, rows in the test file's order)
    from its ``*_psig`` and ``*_pqcd`` columns."""
    with h5py.File(predictions) as h5:
        table = h5["jets"][:]
    if len(table) != len(jets):
        raise RuntimeError(f"{predictions}: {len(table)} jets, the test split has {len(jets)}")
    columns = {}
    for cls in ("sig", "qcd"):
        found = [f for f in table.dtype.names if f.endswith(f"_p{cls}")]
        if len(found) != 1:
            raise RuntimeError(f"{predictions}: no single *_p{cls} column ({found})")
        columns[cls] = table[found[0]].astype(np.float64)
    score = np.log(columns["sig"] + EPS) - np.log(columns["qcd"] + EPS)
    return jet_auc(score, jets["flavour_label"], names)


def bayes_auc(jets: np.ndarray, names: list[str]) -> float:
    """The toy's Bayes-optimal signal-vs-QCD AUC: its exact likelihood ratio (signal at
    mS 16, the only mass simulated)."""
    score = jets["truth_logp_sig_mS16"].astype(np.float64) - jets["truth_logp_qcd"]
    return jet_auc(score, jets["flavour_label"], names)


def rate(records: list[dict[str, Any]], key: str) -> float:
    """Jets per second of ``key`` (wall_s or cpu_s): the median over the epochs after the
    first (which pays warm-up), or over all when there are fewer than 3."""
    use = records[1:] if len(records) >= 3 else records
    return statistics.median(r["jets"] / r[key] for r in use)


def train_hepsnake(
    config: dict[str, Any], files: dict[str, str], model: dict[str, Any], out: Path, threads: int
) -> tuple[list[dict[str, Any]], Path, Path]:
    """Train, then predict the test split; the epoch records, the checkpoint and the
    predictions."""
    from hepsnake.config import contract, resolve
    from hepsnake.evaluate.predict import predict
    from hepsnake.training.run import train

    timing = out / "timing.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    timing.unlink(missing_ok=True)
    part = contract(resolve(config, models={HEPSNAKE_ONNX: model}), "train", model=HEPSNAKE_ONNX)
    paths = (files["train"], files["val"], files["norm"], files["class_dict"])
    train(part, *paths, str(out / "model"), threads, extra_callbacks=[EpochTimer(str(timing))])
    ckpt = out / "model" / "best.ckpt"
    predictions = out / "predictions.h5"
    predict(HEPSNAKE_ONNX, str(ckpt), files["test"], str(predictions))
    return _peers_salt.timings(timing), ckpt, predictions


def train_salt(
    salt_bin: Path,
    config: dict[str, Any],
    files: dict[str, str],
    a: _peers_salt.Arch,
    out: Path,
    threads: int,
    workers: int,
) -> tuple[list[dict[str, Any]], Path, Path]:
    """``salt fit`` and ``salt test``; the epoch records, the run directory and the
    predictions."""
    timing = out / "timing.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    timing.unlink(missing_ok=True)
    cfg = _peers_salt.config(
        a, config["inputs"], config["class_names"], files, out / "logs", timing, workers
    )
    run_dir = _peers_salt.fit(salt_bin, cfg, out, threads)
    predictions = _peers_salt.test(salt_bin, run_dir, threads)
    return _peers_salt.timings(timing), run_dir, predictions


def listed(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The mean of ``values`` and its standard error (0 for one value)."""
    if len(values) < 2:
        return values[0], 0.0
    return statistics.mean(values), statistics.stdev(values) / len(values) ** 0.5


def auc_note(bayes: float, seeds: list[int], salt: list[float], ours: list[float]) -> str:
    """The AUC row's note: the gap of each side to the Bayes-optimal AUC and hepsnake − Salt
    against the target (of the means ± its error, with each seed's AUCs, over several seeds)."""
    (m_salt, e_salt), (m_ours, e_ours) = mean_and_error(salt), mean_and_error(ours)
    diff = m_ours - m_salt
    note = f"Bayes {bayes:.4f}: gap Salt {bayes - m_salt:.4f}, hepsnake {bayes - m_ours:.4f}"
    if len(seeds) > 1:
        error = (e_salt**2 + e_ours**2) ** 0.5
        pairs = zip(seeds, salt, ours, strict=True)
        each = ", ".join(f"{s}: {a:.4f} / {b:.4f}" for s, a, b in pairs)
        note += (
            f"; means over seeds {listed(seeds)}: Salt ± {e_salt:.4f}, hepsnake ±"
            f" {e_ours:.4f}; hepsnake − Salt {diff:+.4f} ± {error:.4f}"
            f" (per seed Salt / hepsnake: {each})"
        )
    else:
        note += f"; hepsnake − Salt {diff:+.4f}"
    return note + f" (target ≥ −0.002: {'met' if diff >= -0.002 else 'NOT met'})"


def bench_train(args: argparse.Namespace, root: Path, salt_bin: Path) -> tuple[list[Row], dict]:
    """The training comparison of each ``args.tasks`` variant over ``args.seeds``; its rows
    and, per variant, the two models trained with the first seed."""
    start = time.perf_counter()
    config, files = prepared(root / "toy", args.jets)
    print(f"toy prepared: {args.jets:,d} jets in {time.perf_counter() - start:.0f} s", flush=True)
    jets = test_jets(files["test"])
    names = list(config["class_names"])
    bayes = bayes_auc(jets, names)
    rows, trained = [], {}
    turn = 0  # which side goes first alternates: a load drift hits both alike
    for i, task in enumerate(args.tasks):
        aux, variant = task == "origin", VARIANTS[task]
        speed: dict[str, list[tuple[float, float]]] = {"hepsnake": [], "salt": []}
        aucs: dict[str, list[float]] = {"hepsnake": [], "salt": []}
        for seed in args.seeds:
            model = hepsnake_model(config, aux, args.epochs, args.batch, seed)
            a = _peers_salt.arch(model, aux, args.batch, args.epochs)
            tag = f"{i}" if len(args.seeds) == 1 else f"{i}_seed{seed}"
            sides: dict[str, Callable[[], tuple]] = {
                "hepsnake": lambda m=model, t=tag: train_hepsnake(
                    config, files, m, root / f"hepsnake_{t}", args.threads
                ),
                "salt": lambda a=a, t=tag: train_salt(
                    salt_bin, config, files, a, root / f"salt_{t}", args.threads, args.salt_workers
                ),
            }
            result = {}
            for side in ["hepsnake", "salt"][:: 1 if turn % 2 == 0 else -1]:
                began = time.perf_counter()
                result[side] = sides[side]()
                records, _, predictions = result[side]
                speed[side].append((rate(records, "wall_s"), rate(records, "cpu_s")))
                aucs[side].append(model_auc(predictions, jets, names))
                print(
                    f"{variant}, seed {seed}: {side} trained and tested in"
                    f" {time.perf_counter() - began:.0f} s, test AUC {aucs[side][-1]:.4f}"
                    f" ({load()})",
                    flush=True,
                )
            turn += 1
            trained.setdefault(variant, {side: result[side][1] for side in result})
        wall = {side: statistics.median(w for w, _ in v) for side, v in speed.items()}
        cpu = {side: statistics.median(c for _, c in v) for side, v in speed.items()}
        epochs = f"{args.epochs} epochs, batch {args.batch}, {args.threads} threads"
        if len(args.seeds) > 1:
            epochs += f", median over seeds {listed(args.seeds)}"
        rows += [
            Row(
                f"train jets/s, {variant} (wall)",
                "Salt",
                wall["salt"],
                wall["hepsnake"],
                "jets/s",
                True,
                1.0,
                epochs,
            ),
            Row(
                f"train jets/CPU-s, {variant}",
                "Salt",
                cpu["salt"],
                cpu["hepsnake"],
                "jets/s",
                True,
                None,
                "CPU of the process and its loader workers",
            ),
            Row(
                f"test AUC sig vs QCD, {variant}",
                "Salt",
                statistics.mean(aucs["salt"]),
                statistics.mean(aucs["hepsnake"]),
                "AUC",
                True,
                None,
                auc_note(bayes, args.seeds, aucs["salt"], aucs["hepsnake"]),
            ),
        ]
    return rows, trained


# ---------------------------------------------------------------- inference


def export_hepsnake(ckpt: Path, out: Path) -> Path:
    """hepsnake's Athena-layout ONNX of a trained checkpoint."""
    from hepsnake.export.athena import export_athena
    from hepsnake.models.checkpoint import load_module

    module = load_module(ckpt)
    path = out / "model.athena.onnx"
    export_athena(module.model, path, HEPSNAKE_ONNX, {})
    return path


def feeds(sess: Any, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One jet for ``sess``: ``n`` tracks, ``n`` × 30/40 clusters, random values."""
    out = {}
    for node in sess.get_inputs():
        width = node.shape[-1]
        if node.name == "jet_features":
            rows = 1
        elif node.name == "track_features":
            rows = n
        else:
            rows = round(n * 30 / 40)
        shape = (rows, width) if len(node.shape) == 2 else (width,)
        out[node.name] = rng.normal(size=shape).astype(np.float32)
    return out


def latencies(models: dict[str, Path], rounds: int, calls: int) -> dict[str, dict[int, float]]:
    """Median seconds per call of each model at each of :data:`TRACKS`, one ORT thread;
    the models run in turn, ``calls`` calls at a time, for ``rounds`` rounds."""
    from hepsnake.export.onnx import session

    rng = np.random.default_rng(0)
    sessions = {name: session(path, threads=1) for name, path in models.items()}
    inputs = {name: {n: feeds(s, n, rng) for n in TRACKS} for name, s in sessions.items()}
    times: dict[str, dict[int, list[float]]] = {m: {n: [] for n in TRACKS} for m in models}
    for name, sess in sessions.items():  # warm-up
        for n in TRACKS:
            sess.run(None, inputs[name][n])
    for _ in range(rounds):
        for n in TRACKS:
            for name, sess in sessions.items():
                feed = inputs[name][n]
                for _ in range(calls):
                    began = time.perf_counter()
                    sess.run(None, feed)
                    times[name][n].append(time.perf_counter() - began)
    return {m: {n: statistics.median(t) for n, t in per.items()} for m, per in times.items()}


def bench_onnx(args: argparse.Namespace, root: Path, salt_bin: Path, trained: dict) -> list[Row]:
    """Export both jet-classification models and time them per jet."""
    models = trained[VARIANTS["jet"]]
    salt_onnx = _peers_salt.to_onnx(salt_bin, models["salt"], 1)
    ours = export_hepsnake(models["hepsnake"], root)
    rounds = 3 if args.smoke else 10
    result = latencies({"salt": salt_onnx, "hepsnake": ours}, rounds, args.latency_calls)
    return [
        Row(
            f"ONNX latency per jet, {n} tracks",
            "Salt",
            result["salt"][n] * 1e6,
            result["hepsnake"][n] * 1e6,
            "µs",
            False,
            1.0,
            "batch 1, 1 ORT thread, median",
        )
        for n in TRACKS
    ]


# ---------------------------------------------------------------- start-up


def bench_startup(args: argparse.Namespace) -> list[Row]:
    """benchmarks/startup.py; a row per verb (no-op run CPU seconds, target 3 s)."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "startup.py")]
    cmd += ["--repeat", "1", "--verbs", "split", "norm"] if args.smoke else ["--repeat", "3"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout
    print(out, end="")
    rows = []
    for line in out.splitlines():
        verb, *_ = line.split() or [""]
        numbers = re.findall(r"\d+\.\d+", line)  # median / min of --help, no-op wall, no-op CPU
        if verb not in VERBS or len(numbers) != 6:
            continue
        wall, cpu = float(numbers[2]), float(numbers[4])
        rows.append(
            Row(
                f"start-up {verb} (no-op run)",
                "3 s budget",
                3.0,
                min(wall, cpu),
                "s",
                False,
                None if verb == "train" else 1.0,
                f"wall {wall:.2f} s, CPU {cpu:.2f} s (the lower counts: shared machine)",
            )
        )
    return rows


# ---------------------------------------------------------------- main


def table(rows: list[Row]) -> str:
    lines = [
        "| figure | peer | peer's | hepsnake | ratio | target | met | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}×"
        target = "–" if r.target is None else f"{'≥' if r.higher_is_better else '≤'} {r.target}×"
        lines.append(
            f"| {r.figure} | {r.peer} | {fmt(r.peer_value, r.unit)} | {fmt(r.ours, r.unit)}"
            f" | {ratio} | {target} | {r.met} | {r.note} |"
        )
    return "\n".join(lines)


def venv(name: str, smoke: bool) -> Path | None:
    """The peer's bin directory, built if missing; None (with a line) when ``smoke`` and
    the build fails."""
    try:
        return _peers_env.build(_peers_env.PEERS[name]).parent
    except RuntimeError as error:
        if not smoke:
            raise
        print(f"peers: skipping {name}: its venv cannot be built ({error})", flush=True)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds to minutes)")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["train", "onnx", "prepare", "startup"],
        choices=["train", "onnx", "prepare", "startup"],
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="training variants: jet only, with the track-origin task (train section)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[1],
        help="training seeds; each trains both sides (gn2.yaml's seed is 1)",
    )
    parser.add_argument("--jets", type=int, default=60_000, help="toy jets (train section)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both trainings")
    parser.add_argument(
        "--salt-workers",
        type=int,
        default=1,
        help="Salt's DataLoader workers (hepsnake reads in one background thread)",
    )
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument(
        "--prepare-jets", default="1e6,1e7", help="jet counts of the prepare section"
    )
    parser.add_argument("--workdir", help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if "onnx" in args.sections and ("train" not in args.sections or "jet" not in args.tasks):
        parser.error("the onnx section exports the jet-only models the train section trains")
    print(f"peers: {load()} at the start", flush=True)
    rows: list[Row] = []
    failed = []

    def section(name: str, run: Callable[[], list[Row]]) -> None:
        """Run one section; a failure is printed and the others still run (and print)."""
        try:
            rows.extend(run())
        except Exception:  # the table of the other sections is still worth printing
            traceback.print_exc()
            failed.append(name)

    with work_directory(args.workdir) as root:
        salt = venv("salt", args.smoke) if {"train", "onnx"} & set(args.sections) else None
        trained: dict = {}
        if salt and "train" in args.sections:

            def train() -> list[Row]:
                train_rows, models = bench_train(args, root, salt)
                trained.update(models)
                return train_rows

            section("train", train)
            if "onnx" in args.sections and trained:
                section("onnx", lambda: bench_onnx(args, root, salt, trained))
        if "prepare" in args.sections and (upp := venv("upp", args.smoke)):
            sizes = [int(float(x)) for x in args.prepare_jets.split(",")]
            section(
                "prepare",
                lambda: [Row(**r) for r in _peers_upp.bench(root / "prepare", upp, sizes)],
            )
        if "startup" in args.sections:
            section("startup", lambda: bench_startup(args))
    print(f"peers: {load()} at the end", flush=True)
    print(table(rows))
    if failed:
        sys.exit(f"peers: sections failed: {', '.join(failed)} (tracebacks above)")


if __name__ == "__main__":
    main()
