"""Int8 variants of an exported tagger vs its fp32 ONNX model: throughput, AUC, where time goes.

Exports the checkpoint to ONNX fp32 once (as the ``export`` stage does), pre-processes it
once (:func:`hepsnake.export.quantise.preprocess`), then builds int8 variants with
``onnxruntime.quantization``: dynamic (QInt8 / QUInt8 weights, per-channel, MatMul only,
``MatMulConstBOnly``, only the larger layers) and static, calibrated on validation jets
(QOperator and QDQ formats, U8 / S8 activations, all ops or MatMul/Gemm only). Each variant is
checked with the stage's own :func:`hepsnake.export.stage.validate_int8` (weights, padding
invariance, AUC change on the test jets). Throughput is timed at batch 1000 with ONNX Runtime
on CPU: every model gets the same input arrays and session options, and the rounds interleave
the models so that a slow spell of a shared machine hits them alike (median over rounds).
Then fp32 and the fastest valid variant are timed under other session options (optimisation
level, threads), and ORT's profiler gives their time per operator type, with the bound that
Amdahl's law puts on any int8 speed-up (the share of fp32 time in matrix products). The
``int8 ops`` column counts the integer kernels left after ORT's own graph optimisation:
variants with equal counts usually run the very same kernels.

Run by hand, e.g. ``python benchmarks/int8.py --checkpoint results/models/baseline/best.ckpt
--test results/prepared/test.h5``. ``--smoke`` (a test runs it) only checks that the script
runs: without ``--checkpoint`` it trains the baseline one epoch on a small toy first, and it
builds the two shipped variants only.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no busy-waiting threads

import argparse
import bisect
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from _common import REPO, parse_args, shipped_config, work_directory
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import load_module
from hepsnake.export import benchmark as bench
from hepsnake.export import stage
from hepsnake.export.onnx import export_onnx, feeds, input_names, quiet
from hepsnake.export.quantise import Feeds, preprocess

LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
}
BATCH = 1000
Quantiser = Callable[[Path, Path, list[dict[str, np.ndarray]]], None]


def session(path: str | Path, threads: int, level: str = "all", profile: str = "") -> Any:
    """A CPU session as :func:`hepsnake.export.onnx.session` makes, with a chosen optimisation
    level; ``profile``: prefix of an ORT profile file (profiling on)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = LEVELS[level]
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def matmul_weights(path: Path) -> dict[str, tuple[int, ...]]:
    """Name → weight shape of every MatMul/Gemm node with a constant weight."""
    graph = onnx.load(str(path)).graph
    inits = {t.name: tuple(t.dims) for t in graph.initializer}
    return {
        n.name: inits[n.input[1]]
        for n in graph.node
        if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in inits
    }


def dynamic(**kwargs: Any) -> Quantiser:
    def make(pre: Path, out: Path, _: list[dict[str, np.ndarray]]) -> None:
        quantize_dynamic(pre, out, **{"weight_type": QuantType.QInt8, **kwargs})

    return make


def large_layers(pre: Path, out: Path, _: list[dict[str, np.ndarray]]) -> None:
    """Dynamic QInt8 of the MatMul/Gemm nodes with at least 32×32 weights only."""
    nodes = [name for name, shape in matmul_weights(pre).items() if np.prod(shape) >= 32 * 32]
    quantize_dynamic(pre, out, weight_type=QuantType.QInt8, nodes_to_quantize=nodes)


def static(fmt: QuantFormat, activations: QuantType, **kwargs: Any) -> Quantiser:
    def make(pre: Path, out: Path, calibration: list[dict[str, np.ndarray]]) -> None:
        quantize_static(
            pre,
            out,
            Feeds(calibration),
            quant_format=fmt,
            activation_type=activations,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            **kwargs,
        )

    return make


MATMULS = ["MatMul", "Gemm"]
QOP, QDQ, U8, S8 = QuantFormat.QOperator, QuantFormat.QDQ, QuantType.QUInt8, QuantType.QInt8
SYMMETRIC = {"ActivationSymmetric": True}
VARIANTS: dict[str, Quantiser] = {
    "dyn s8w (current)": dynamic(),
    "dyn u8w": dynamic(weight_type=QuantType.QUInt8),
    "dyn s8w per-channel": dynamic(per_channel=True),
    "dyn s8w reduce_range": dynamic(reduce_range=True),
    "dyn MatMul only": dynamic(op_types_to_quantize=["MatMul"]),
    "dyn MatMul+Gemm": dynamic(op_types_to_quantize=MATMULS),
    "dyn MatMulConstBOnly": dynamic(extra_options={"MatMulConstBOnly": True}),
    "dyn weights>=32x32 only": large_layers,
    "static QDQ s8/s8 sym (current)": static(QDQ, S8, extra_options=SYMMETRIC),
    "static QDQ u8/s8": static(QDQ, U8),
    "static QDQ u8/s8 MatMul/Gemm": static(QDQ, U8, op_types_to_quantize=MATMULS),
    "static QOp u8/s8": static(QOP, U8),
    "static QOp s8/s8": static(QOP, S8),
    "static QOp u8/s8 MatMul/Gemm": static(QOP, U8, op_types_to_quantize=MATMULS),
    "static QOp u8/s8 per-channel": static(QOP, U8, per_channel=True),
}


def throughput(
    paths: dict[str, Path],
    batch: dict[str, np.ndarray],
    threads: int,
    level: str,
    rounds: int,
) -> dict[str, tuple[float, float]]:
    """(jets/s by wall time, jets/s by CPU time of the calling thread) per model, medians over
    ``rounds`` rounds; each round runs every model once on ``batch``, in a shuffled order.

    With one thread ONNX Runtime computes on the calling thread, so its CPU time is the
    work done and barely feels other jobs on the machine; with more it counts one share.
    """
    sessions = {name: session(path, threads, level) for name, path in paths.items()}
    n_jets = len(next(iter(batch.values())))
    wall: dict[str, list[float]] = {name: [] for name in sessions}
    cpu: dict[str, list[float]] = {name: [] for name in sessions}
    for sess in sessions.values():  # warm-up
        sess.run(None, batch)
    order = list(sessions)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start, start_cpu = time.perf_counter(), time.thread_time()
            sessions[name].run(None, batch)
            cpu[name].append(time.thread_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {
        name: (n_jets / statistics.median(wall[name]), n_jets / statistics.median(cpu[name]))
        for name in sessions
    }


def int8_nodes(path: Path) -> int:
    """Integer-arithmetic nodes left after ONNX Runtime's own graph optimisation."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    kinds = ("DynamicQuantizeMatMul", "MatMulInteger", "QGemm", "QAttention")
    return sum(n.op_type in kinds or n.op_type.startswith("QLinear") for n in graph.node)


def profile(
    path: Path, batch: dict[str, np.ndarray], threads: int, level: str, prefix: str, runs: int
) -> Counter[str]:
    """Microseconds per run and operator type from ORT's profiler: per operator type, the
    median over ``runs`` runs (after a warm-up run)."""
    sess = session(path, threads, level, profile=prefix)
    for _ in range(runs + 1):
        sess.run(None, batch)
    events = json.loads(Path(sess.end_profiling()).read_text())
    starts = sorted(
        e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"
    )
    per_run: list[Counter[str]] = [Counter() for _ in starts]
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            run = bisect.bisect_right(starts, event["ts"]) - 1
            if run >= 0:
                per_run[run][event["args"]["op_name"]] += event["dur"]
    per_run = per_run[1:]
    ops = set().union(*per_run)
    return Counter({op: statistics.median(run[op] for run in per_run) for op in ops})


MATMUL_OPS = ("MatMul", "Gemm", "DynamicQuantizeMatMul", "MatMulInteger", "QGemm")


def print_profiles(profiles: dict[str, Counter[str]], top: int = 14) -> None:
    """Per operator type: ms per run and share of the kernel time, one column per model."""
    ops = sorted(
        set().union(*profiles.values()), key=lambda op: -max(p[op] for p in profiles.values())
    )
    totals = {label: sum(p.values()) for label, p in profiles.items()}
    print(f"{'op type':<24}" + "".join(f"{label[:26]:>28}" for label in profiles))
    for op in ops[:top]:
        cells = [
            f"{p[op] / 1e3:.2f} ms {100 * p[op] / totals[k]:5.1f} %" for k, p in profiles.items()
        ]
        print(f"{op:<24}" + "".join(f"{c:>28}" for c in cells))
    rest = [sum(p[op] for op in ops[top:]) / 1e3 for p in profiles.values()]
    print(f"{'(other)':<24}" + "".join(f"{f'{r:.2f} ms':>28}" for r in rest))
    print(
        f"{'total kernel time':<24}"
        + "".join(f"{f'{t / 1e3:.2f} ms':>28}" for t in totals.values())
    )
    fp32, int8 = profiles.values()
    matmul = sum(fp32[op] for op in MATMUL_OPS)
    fused = max(0.0, fp32["Add"] - int8["Add"])  # bias additions int8 kernels take in
    total = sum(fp32.values())
    print(
        f"fp32 MatMul/Gemm: {100 * matmul / total:.1f} % of the kernel time, "
        f"{100 * (matmul + fused) / total:.1f} % with the bias Adds that int8 fuses: free "
        f"matrix products would make fp32 at most {total / (total - matmul):.2f}x / "
        f"{total / (total - matmul - fused):.2f}x faster (Amdahl)"
    )


def build(args: argparse.Namespace, work: Path) -> None:
    """Export, quantise every variant, check, time under several options, profile."""
    module = load_module(args.checkpoint)
    name = args.name or Path(args.checkpoint).parent.name
    fp32 = work / "fp32.onnx"
    export_onnx(module.model, fp32, name, {}, args.opset)
    batches = bench.load_batches(module, args.test, args.jets, BATCH)
    edge = stage.edge_jets(batches[0], module.spec, stage.max_widths(module.spec, args.test))
    names = input_names(module.model)
    val = args.val or str(Path(args.test).with_name("val.h5"))
    calibration = [feeds(b, names) for b in bench.load_batches(module, val, 2000, 500)]
    batch = feeds(batches[0], names)  # the timing input, same for every model
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in batch.items())
    print(
        f"{name}: {sum(len(b['label']) for b in batches)} test jets for the AUC; timed on "
        f"{shapes}; {args.rounds} rounds; onnxruntime {ort.__version__}; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    pre = work / "pre.onnx"
    with quiet():
        preprocess(fp32, pre)
    paths = {"fp32": fp32, "fp32 pre-processed": pre}
    checks: dict[str, str] = {}
    for variant in args.variants:
        make = VARIANTS[variant]
        out = work / f"int8_{len(paths)}.onnx"
        try:
            with quiet():
                make(pre, out, calibration)
        except Exception as error:  # a quantiser that gives up on this graph
            print(f"{variant}: not built: {type(error).__name__}: {error}")
            continue
        paths[variant] = out
        try:
            stage.validate_int8(fp32, out, module, batches, edge, variant, args.threads)
            checks[variant] = "passes"
        except HepsnakeError as error:
            checks[variant] = str(error).split(": ", 1)[-1]
        except Exception as error:
            checks[variant] = f"check fails: {type(error).__name__}: {error}"
    aucs = {v: auc(path, batches, module, args.threads) for v, path in paths.items()}
    speed = throughput(paths, batch, args.threads, "all", args.rounds)
    base, base_cpu = speed["fp32"]
    print(
        f"\n{args.threads} thread(s), ORT_ENABLE_ALL; ratios are int8/fp32 throughput "
        "(wall time, and CPU time of the calling thread)"
    )
    print(
        f"{'model':<32}{'jets/s':>8}{'wall':>6}{'cpu':>6}{'int8 ops':>9}{'ΔAUC':>9}  validate_int8"
    )
    ok: dict[str, float] = {}
    for variant, (jets, jets_cpu) in speed.items():
        delta = aucs[variant] - aucs["fp32"]
        quantised = int8_nodes(paths[variant])
        if quantised and abs(delta) <= bench.TARGETS["int8_auc_delta_max"]:
            ok[variant] = jets / base
        print(
            f"{variant:<32}{jets:>8.0f}{jets / base:>6.2f}{jets_cpu / base_cpu:>6.2f}"
            f"{quantised:>9d}{delta:>+9.4f}  {checks.get(variant, '')}"
        )
    if ok:
        best = max(ok, key=lambda v: ok[v])
        print(f"\nfastest int8 variant with |ΔAUC| <= 0.005: {best}")
    else:
        built = [v for v in speed if v in VARIANTS]
        best = max(built, key=lambda v: speed[v][0])
        print(f"\nno int8 variant with |ΔAUC| <= 0.005; the fastest built: {best}")
    print("session options (each ratio is int8/fp32 under the same options, wall / CPU):")
    pair = {"fp32": fp32, best: paths[best]}
    for level in ("all", "extended", "basic"):
        for threads in (1, 2):
            s = throughput(pair, batch, threads, level, args.rounds)
            print(
                f"  {level:<9} {threads} thread(s): fp32 {s['fp32'][0]:>7.0f} jets/s, "
                f"int8 {s[best][0]:>7.0f} jets/s, ratio {s[best][0] / s['fp32'][0]:.2f}"
                f" / {s[best][1] / s['fp32'][1]:.2f}"
            )
    print(f"\nORT profile, per run at batch {BATCH} ({args.threads} thread(s), ORT_ENABLE_ALL):")
    profiles = {
        label: profile(path, batch, args.threads, "all", str(work / f"profile{i}"), args.rounds)
        for i, (label, path) in enumerate(pair.items())
    }
    print_profiles(profiles)


def auc(path: Path, batches: list[Any], module: Any, threads: int) -> float:
    """Signal AUC of the model at ``path`` on ``batches``."""
    sess = session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    probs = np.concatenate([np.stack(sess.run(None, feeds(b, names)), -1) for b in batches])
    labels = np.concatenate([b["label"].numpy() for b in batches])
    value = bench.signal_auc(probs, labels, list(module.hparams.class_names))
    return float("nan") if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained best.ckpt (required but with --smoke)")
    parser.add_argument("--test", help="prepared test.h5 (AUC, timing inputs; with --checkpoint)")
    parser.add_argument("--val", help="prepared val.h5 for calibration (default: beside --test)")
    parser.add_argument("--name", help="model name (default: the checkpoint's directory)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--jets", type=int, default=5000, help="test jets for the AUC")
    parser.add_argument("--rounds", type=int, default=40, help="timing rounds (median)")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--workdir", help="keep the models here (default: a temp dir)")
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME"
    )
    shipped = ["dyn s8w (current)", "static QDQ s8/s8 sym (current)"]
    args = parse_args(parser, {"jets": 500, "rounds": 2, "variants": shipped})
    if not ((args.checkpoint and args.test) or args.smoke):
        parser.error("--checkpoint and --test are required (but with --smoke)")
    torch.set_num_threads(args.threads)
    with work_directory(args.workdir) as work:
        if not args.checkpoint:
            args.checkpoint, args.test = smoke_inputs(work)
        build(args, work)


def smoke_inputs(work: Path) -> tuple[str, str]:
    """(checkpoint, test file) of the shipped baseline trained one epoch on a small toy."""
    from hepsnake.config import contract, load_model, resolve
    from hepsnake.simulate.prepared import prepared_toy
    from hepsnake.training.run import train

    config = shipped_config() | {"model_dir": str(REPO / "config" / "models")}
    jets = {"qcd": 1000, "bib": 400, "sig": 600}
    config, outputs = prepared_toy(config, work, jets, 7)
    model = load_model(config, "baseline")
    model["training"]["max_epochs"] = 1
    part = contract(resolve(config, models={"baseline": model}), "train", model="baseline")
    paths = (str(work / "norm.yaml"), str(work / "class.yaml"), str(work / "baseline"))
    train(part, outputs["train"], outputs["val"], *paths)
    return str(work / "baseline" / "best.ckpt"), outputs["test"]


if __name__ == "__main__":
    main()
