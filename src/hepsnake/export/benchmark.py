"""CPU latency (batch 1) and throughput (batch 1000) of PyTorch eager, ONNX fp32 and int8.

Every backend gets the same jets, already converted (tensors for PyTorch, numpy arrays for
ONNX Runtime), the same number of threads, and the rounds interleave the backends so that
a slow spell of a shared machine hits them alike. With one thread (the rule's default) the
figures are the calling thread's CPU time, which other Snakemake jobs running on the same
cores do not inflate; wall-clock figures are recorded next to them.
"""

import os
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepsnake.data.loader import Batch, H5Batches
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.export.onnx import feeds, session
from hepsnake.models.checkpoint import TrainedTagger
from hepsnake.roc import auc

BACKENDS = ("pytorch", "onnx_fp32", "onnx_int8")
TARGETS = {"fp32_latency_ratio_max": 0.5, "int8_speedup_min": 1.3, "int8_auc_delta_max": 0.005}


def load_batches(module: TrainedTagger, path: str, n_jets: int, batch_size: int) -> list[Batch]:
    """The first ``n_jets`` jets of ``path`` as loader batches, with the truth fields of the
    model's tasks.

    Parameterised models get the signal jets' own parameter values and, for background
    jets, values drawn (seeded) from the training values.
    """
    truth = tuple((t.dataset, f) for t in module.model.tasks for f in t.truth())
    batches: Any = H5Batches(path, module.spec, batch_size, limit=n_jets, extra_fields=truth)
    if module.trained.parameters:
        batches = WithParameters(batches, ParameterSampler(module.trained.parameters), seed=0)
    return list(batches)


def single_jets(batches: list[Batch], n_jets: int) -> list[Batch]:
    """The first ``n_jets`` jets of ``batches`` one per batch, as the loader would give them
    (constituent axes trimmed to the jet's own count, at least 1)."""
    out: list[Batch] = []
    for batch in batches:
        masks = [k for k in batch if k.endswith("_mask")]
        for i in range(len(batch["label"])):
            if len(out) == n_jets:
                return out
            jet = {k: v[i : i + 1] for k, v in batch.items()}
            for key in masks:
                width = max(1, int(jet[key].sum()))
                coll = key.removesuffix("_mask")
                jet[key] = jet[key][:, :width].clone()
                jet[coll] = jet[coll][:, :width].clone()
            out.append({k: v.contiguous() for k, v in jet.items()})
    return out


def signal_auc(
    probs: np.ndarray, labels: np.ndarray, class_names: list[str], signal: str = "sig"
) -> float | None:
    """AUC of the signal class against all others, with equal background fractions."""
    from hepsnake.evaluate.metrics import discriminant  # scikit-learn: ~1 s to import

    if signal not in class_names:
        return None
    sig = class_names.index(signal)
    present = [i for i, _ in enumerate(class_names) if i != sig and np.any(labels == i)]
    if not present or not np.any(labels == sig):
        return None
    columns = {c: probs[:, i].astype(np.float64) for i, c in enumerate(class_names)}
    score = discriminant(columns, signal, {class_names[i]: 1.0 / len(present) for i in present})
    return auc(score[labels == sig], score[np.isin(labels, present)])


Runner = Callable[[Any], np.ndarray]


def runners(
    module: TrainedTagger, fp32: str | Path, int8: str | Path, threads: int
) -> dict[str, tuple[Runner, Callable[[Batch], Any]]]:
    """Per backend: (run one prepared input → probabilities, prepare a loader batch); ONNX
    Runtime computes every output, the probabilities are its first ones."""
    module.eval()
    n = len(module.hparams.class_names)
    task = module.model.classification

    @torch.inference_mode()
    def run_torch(batch: Batch) -> np.ndarray:
        return task.probabilities(module(batch)).numpy()

    out: dict[str, tuple[Runner, Callable[[Batch], Any]]] = {"pytorch": (run_torch, dict)}
    for name, path in (("onnx_fp32", fp32), ("onnx_int8", int8)):
        sess = session(path, threads)
        names = [i.name for i in sess.get_inputs()]

        def run_onnx(inputs: dict[str, np.ndarray], sess: Any = sess) -> np.ndarray:
            return np.stack(sess.run(None, inputs)[:n], axis=-1)

        def prepare(batch: Batch, names: list[str] = names) -> dict[str, np.ndarray]:
            return feeds(batch, names)

        out[name] = (run_onnx, prepare)
    return out


def timed(run: Runner, inputs: list[Any]) -> tuple[list[float], list[float], list[np.ndarray]]:
    """Per call of ``run`` on each input: CPU seconds of this thread, wall seconds; outputs.

    With one thread, PyTorch and ONNX Runtime compute in the calling thread, so its CPU
    time is what the call costs even when other jobs share the cores (wall time is not).
    """
    cpu, wall, outputs = [], [], []
    for x in inputs:
        start, start_cpu = time.perf_counter(), time.thread_time()
        outputs.append(run(x))
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return cpu, wall, outputs


def benchmark(
    module: TrainedTagger,
    fp32: str | Path,
    int8: str | Path,
    singles: list[Batch],
    batches: list[Batch],
    threads: int = 1,
    rounds: int = 5,
    signal: str = "sig",
) -> dict[str, Any]:
    """Latency over ``singles`` (batch-1 inputs), throughput and AUC over ``batches``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        backends = runners(module, fp32, int8, threads)
        prepared = {
            name: ([prep(b) for b in singles], [prep(b) for b in batches])
            for name, (_, prep) in backends.items()
        }
        # the clock the targets use: this thread's CPU time when it does all the work
        clock = 0 if threads == 1 else 1
        latency: dict[str, list[list[float]]] = {n: [[], []] for n in backends}
        elapsed: dict[str, list[list[float]]] = {n: [[], []] for n in backends}
        outputs: dict[str, list[np.ndarray]] = {}
        for name, (run, _) in backends.items():  # warm-up
            timed(run, prepared[name][0][:20] + prepared[name][1][:1])
        for _ in range(rounds):
            for name, (run, _) in backends.items():
                cpu, wall, _ = timed(run, prepared[name][0])
                latency[name][0] += cpu
                latency[name][1] += wall
                cpu, wall, outputs[name] = timed(run, prepared[name][1])
                elapsed[name][0].append(sum(cpu))
                elapsed[name][1].append(sum(wall))
    finally:
        torch.set_num_threads(previous)
    labels = np.concatenate([b["label"].numpy() for b in batches])
    n_jets = len(labels)
    class_names = list(module.hparams.class_names)
    results: dict[str, Any] = {}
    for name in backends:
        probs = np.concatenate(outputs[name])
        results[name] = {
            "latency_ms_median": 1e3 * statistics.median(latency[name][clock]),
            "latency_ms_p90": 1e3 * float(np.quantile(latency[name][clock], 0.9)),
            "throughput_jets_per_s": n_jets / statistics.median(elapsed[name][clock]),
            "wall_latency_ms_median": 1e3 * statistics.median(latency[name][1]),
            "wall_throughput_jets_per_s": n_jets / statistics.median(elapsed[name][1]),
            "auc": signal_auc(probs, labels, class_names, signal),
        }
    return {
        "backends": results,
        "targets": targets(results),
        "setup": {
            "device": "cpu",
            "threads": threads,
            "clock": "thread CPU time" if clock == 0 else "wall time",
            "rounds": rounds,
            "latency_jets": len(singles),
            "throughput_jets": n_jets,
            "throughput_batch_size": len(batches[0]["label"]) if batches else 0,
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "cpu_count": os.cpu_count(),
        },
    }


def targets(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The issue's speed/accuracy targets, each with the observed value and whether it is met."""
    torch_lat = results["pytorch"]["latency_ms_median"]
    ratio = results["onnx_fp32"]["latency_ms_median"] / torch_lat
    speedup = (
        results["onnx_int8"]["throughput_jets_per_s"]
        / results["onnx_fp32"]["throughput_jets_per_s"]
    )
    a32, a8 = results["onnx_fp32"]["auc"], results["onnx_int8"]["auc"]
    delta = None if a32 is None or a8 is None else a8 - a32
    return {
        "fp32_latency_vs_pytorch": {
            "value": ratio,
            "target": f"<= {TARGETS['fp32_latency_ratio_max']}",
            "met": ratio <= TARGETS["fp32_latency_ratio_max"],
        },
        "int8_throughput_vs_fp32": {
            "value": speedup,
            "target": f">= {TARGETS['int8_speedup_min']}",
            "met": speedup >= TARGETS["int8_speedup_min"],
        },
        "int8_auc_delta": {
            "value": delta,
            "target": f"|x| <= {TARGETS['int8_auc_delta_max']}",
            "met": delta is not None and abs(delta) <= TARGETS["int8_auc_delta_max"],
        },
    }


def plot(result: Mapping[str, Any], output: str | Path, title: str = "") -> None:
    """Latency, throughput and AUC per backend as three bar panels (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hepsnake.io.figure import save_figure

    backends = list(result["backends"])
    rows = [result["backends"][b] for b in backends]
    colours = ["tab:grey", "tab:blue", "tab:orange"][: len(backends)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = (
        ("latency_ms_median", "latency at batch 1 [ms] (median)"),
        ("throughput_jets_per_s", "throughput at batch 1000 [jets/s]"),
        ("auc", "AUC (signal vs rest)"),
    )
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = [r[key] if r[key] is not None else np.nan for r in rows]
        bars = ax.bar(backends, values, color=colours)
        ax.bar_label(bars, fmt="%.4f" if key == "auc" else "%.3g", fontsize=8)
        ax.set_ylabel(label)
        if key == "latency_ms_median":
            p90 = [r["latency_ms_p90"] for r in rows]
            ax.errorbar(
                backends,
                values,
                yerr=[[0] * len(p90), np.subtract(p90, values)],
                fmt="none",
                ecolor="k",
                capsize=3,
                label="p90",
            )
            ax.legend(fontsize=8)
        if key == "auc" and np.isfinite(values).any():
            finite = [v for v in values if np.isfinite(v)]
            ax.set_ylim(min(finite) - 0.02, min(1.0, max(finite) + 0.01))
    setup = result["setup"]
    clock = setup.get("clock", "wall time")
    fig.suptitle(f"{title} CPU, {setup['threads']} thread(s), {clock}".strip())
    fig.tight_layout()
    save_figure(fig, output)
