"""The ``export`` stage: ONNX fp32 + int8 models of a checkpoint, validated and benchmarked.

Writes ``model.onnx``, ``model.int8.onnx``, ``validation.json``, ``benchmark.json`` and
``benchmark.png`` (and ``.pdf``) in ``outdir``, with ``athena`` also ``model.athena.onnx`` (the
Salt/Athena layout, :mod:`hepsnake.export.athena`). Everything is built in a temporary
sibling directory and moved into place only once every model has passed validation; a failed
check raises :class:`HepsnakeError` and leaves nothing behind.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepsnake import __version__
from hepsnake.data.loader import Batch, InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import load_module
from hepsnake.export import athena as salt
from hepsnake.export import benchmark as bench
from hepsnake.export.onnx import (
    export_onnx,
    feeds,
    input_names,
    output_names,
    outputs,
    real_slots,
    session,
    task_outputs,
)
from hepsnake.export.quantise import MODES, weight_errors
from hepsnake.export.quantise import quantise as quantise_model
from hepsnake.io.atomic import atomic_path, job_scratch, write_json
from hepsnake.io.files import open_h5
from hepsnake.models.checkpoint import TrainedTagger, config_sha256
from hepsnake.models.tasks.base import label_key
from hepsnake.names import valid_field
from hepsnake.paths import EXPORT_FILES, figure_files

log = logging.getLogger("hepsnake")

# the benchmark plot is written as PNG and PDF (hepsnake.paths.figure_files)
OUTPUTS = (
    *(EXPORT_FILES[k] for k in ("onnx", "int8", "validation", "benchmark")),
    *figure_files(EXPORT_FILES["plot"]),
)
TOLERANCE = 1e-4  # ONNX Runtime vs PyTorch, max |Δ| of every output over its real entries
PADDING_TOLERANCE = 1e-5  # outputs with garbage-filled extra padded slots vs without
# the metadata the Athena layout's gnn_config carries under "hepsnake"
PROVENANCE = ("training_config_sha256", "hepsnake_version", "git_commit", "torch_version", "opset")
WEIGHT_STEPS = 0.51  # max |dequantised − fp32| of an int8 weight, in quantisation steps


def plain(value: Any) -> Any:
    """``value`` as plain JSON types (hyperparameters may hold tuples or containers)."""
    return json.loads(json.dumps(value, default=str))


def to_json(value: Any) -> str:
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"))


def model_metadata(
    module: TrainedTagger, model_name: str, git_commit: str, opset: int
) -> dict[str, str]:
    """The ONNX metadata properties: everything needed to feed the model and trace it back."""
    hp = plain(dict(module.hparams))
    tagger = module.model
    names = input_names(tagger)
    variables = {
        n: tagger.spec.variables.get(n.removesuffix("_data"), tagger.spec.parameters)
        for n in names
        if n.endswith("_data")
    }
    return {
        "model_name": model_name,
        "input_names": to_json(names),
        "input_variables": to_json(variables),
        "output_names": to_json(output_names(model_name, tagger.tasks)),
        "class_names": to_json(hp["class_names"]),
        "norm": to_json(hp["norm"]),
        "parameters": to_json(hp.get("parameters")),
        "model_config": to_json(hp["model_cfg"]),
        "training_config": to_json(hp["training_cfg"]),
        "training_config_sha256": config_sha256(hp),
        "hepsnake_version": __version__,
        "git_commit": git_commit,
        "torch_version": torch.__version__,
        "opset": str(opset),
    }


def max_widths(spec: InputSpec, path: str) -> dict[str, int]:
    """The most constituents a loader batch of ``path`` can hold, per collection."""
    with open_h5(path, "test split", [spec.dataset(c) for c in spec.constituents]) as h5:
        widths = {c: h5[spec.dataset(c)].shape[1] for c in spec.constituents}
    return {c: min(w, spec.num_inputs.get(c) or w) for c, w in widths.items()}


def edge_jets(batch: Batch, spec: InputSpec, widths: dict[str, int], n: int = 4) -> Batch:
    """Jets with no constituents at all, with one collection empty, and with every slot full.

    Built from the first ``n`` jets of ``batch`` (their jet variables, parameters and own
    constituents); full jets draw their constituents from the real ones of the batch.
    """
    rng = np.random.default_rng(7)
    n = min(n, len(batch["label"]))
    kinds = ["none", *(f"no_{c}" for c in spec.constituents), "full"]
    out: dict[str, list[torch.Tensor]] = {}
    for kind in kinds:
        for key in ("jets", "params", "label", "weight"):
            if key in batch:
                out.setdefault(key, []).append(batch[key][:n])
        for c in spec.constituents:
            x, mask, width = batch[c][:n], batch[f"{c}_mask"][:n], widths[c]
            data = torch.zeros(n, width, x.shape[-1])
            keep = torch.zeros(n, width, dtype=torch.bool)
            if kind == "full":
                pool = batch[c][batch[f"{c}_mask"]]
                if len(pool):
                    data = pool[torch.from_numpy(rng.integers(0, len(pool), (n, width)))]
                    keep[:] = True
            elif kind not in ("none", f"no_{c}"):
                data[:, : x.shape[1]] = torch.where(mask.unsqueeze(-1), x, 0.0)
                keep[:, : x.shape[1]] = mask
            out.setdefault(c, []).append(data)
            out.setdefault(f"{c}_mask", []).append(keep)
    return {k: torch.cat(v) for k, v in out.items()}


def with_garbage(batch: Batch, spec: InputSpec, extra: int = 5, seed: int = 1) -> Batch:
    """``batch`` with garbage (huge, NaN, ±inf) in its padded slots plus ``extra`` more."""
    rng = np.random.default_rng(seed)
    out = dict(batch)
    for c in spec.constituents:
        x, mask = batch[c], batch[f"{c}_mask"]
        b, n, f = x.shape
        junk = rng.normal(0.0, 1e3, (b, n + extra, f)).astype(np.float32)
        junk.flat[rng.integers(0, junk.size, max(1, junk.size // 50))] = np.nan
        junk.flat[rng.integers(0, junk.size, max(1, junk.size // 50))] = np.inf
        junk.flat[rng.integers(0, junk.size, max(1, junk.size // 50))] = -np.inf
        garbage = torch.from_numpy(junk)
        out[c] = torch.cat([torch.where(mask.unsqueeze(-1), x, garbage[:, :n]), garbage[:, n:]], 1)
        out[f"{c}_mask"] = torch.cat([mask, torch.zeros(b, extra, dtype=torch.bool)], 1)
    return out


def largest_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b|, infinite where either side is not finite."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def masked_diff(got: np.ndarray, want: np.ndarray, keep: np.ndarray) -> float:
    """:func:`largest_diff` over the entries of ``want`` that ``keep`` marks (padded slots of
    a constituent-level output are don't-care), ``got`` cut to the shape of ``want`` (slots
    appended after the last are dropped)."""
    got = got[tuple(slice(0, n) for n in want.shape)]
    keep = np.broadcast_to(keep, want.shape)
    return largest_diff(got[keep], want[keep])


@torch.inference_mode()
def torch_outputs(module: TrainedTagger, batch: Batch) -> list[np.ndarray]:
    """PyTorch's value of every ONNX output on one loader batch, in output order."""
    return [x.numpy() for x in task_outputs(module.model, module(batch))]


def output_diffs(sess: Any, batch: Batch, reference: list[np.ndarray], got: Batch) -> list[float]:
    """Per output of ``sess``: :func:`masked_diff` of its outputs on ``got`` vs ``reference``
    (on ``batch``) over the real entries of ``batch``."""
    keeps = real_slots(sess, batch)
    return [
        masked_diff(g, w, k) for g, w, k in zip(outputs(sess, got), reference, keeps, strict=True)
    ]


def padding_diffs(
    sess: Any, spec: InputSpec, batches: list[Batch], extra: int = 5
) -> dict[str, float]:
    """Per output, the largest change of ``sess``'s real entries when the padded slots of
    ``batches`` are filled with garbage and ``extra`` garbage padded slots are appended."""
    diffs = [output_diffs(sess, b, outputs(sess, b), with_garbage(b, spec, extra)) for b in batches]
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, np.max(diffs, axis=0).tolist(), strict=True))


def padding_diff(sess: Any, spec: InputSpec, batches: list[Batch], extra: int = 5) -> float:
    """The largest of :func:`padding_diffs`."""
    return max(padding_diffs(sess, spec, batches, extra).values())


def validate_fp32(
    path: str | Path,
    module: TrainedTagger,
    batches: list[Batch],
    edge: Batch,
    name: str,
    threads: int = 1,
) -> dict[str, Any]:
    """ONNX Runtime vs PyTorch on ``batches`` and ``edge`` jets, and padding invariance, output
    by output over its real entries (a constituent-level output's padded slots are not).

    Raises :class:`HepsnakeError` (naming ``name`` and the worst output) beyond
    :data:`TOLERANCE` or :data:`PADDING_TOLERANCE`, or on any non-finite real entry.
    """
    sess = session(path, threads)
    names = [o.name for o in sess.get_outputs()]

    def vs_torch(batch: Batch) -> np.ndarray:
        return np.array(output_diffs(sess, batch, torch_outputs(module, batch), batch))

    per_output = np.max([vs_torch(b) for b in batches], axis=0)
    edges = vs_torch(edge)
    n_jets = sum(len(b["label"]) for b in batches)
    worst = np.maximum(per_output, edges)
    if not worst.max() <= TOLERANCE:
        raise HepsnakeError(
            name,
            f"ONNX Runtime output '{names[int(np.argmax(worst))]}' differs from PyTorch by "
            f"{worst.max():.3g} (tolerance {TOLERANCE:g}) on {n_jets} test jets + "
            f"{len(edge['label'])} edge-case jets",
        )
    padding = padding_diffs(sess, module.spec, [*batches[:2], edge])
    if not max(padding.values()) <= PADDING_TOLERANCE:
        output = max(padding, key=padding.__getitem__)
        raise HepsnakeError(
            name,
            f"output '{output}' changes by {padding[output]:.3g} when garbage padded "
            f"constituents are added (tolerance {PADDING_TOLERANCE:g})",
        )
    return {
        "n_jets": n_jets,
        "n_edge_jets": len(edge["label"]),
        "max_abs_diff_vs_pytorch": float(per_output.max()),
        "max_abs_diff_vs_pytorch_edge_jets": float(edges.max()),
        "max_abs_diff_vs_pytorch_per_output": dict(zip(names, worst.tolist(), strict=True)),
        "padding_max_abs_diff": max(padding.values()),
        "padding_max_abs_diff_per_output": padding,
        "tolerance": TOLERANCE,
        "padding_tolerance": PADDING_TOLERANCE,
        "passed": True,
    }


def validate_int8(
    fp32: str | Path,
    int8: str | Path,
    module: TrainedTagger,
    batches: list[Batch],
    edge: Batch,
    name: str,
    threads: int = 1,
    signal: str = "sig",
) -> dict[str, Any]:
    """Int8 vs fp32: weights, per-output differences (over real entries), the jet AUC change,
    each other task's figures (:func:`task_figures`); padding invariance of every output.

    Raises :class:`HepsnakeError` (naming ``name``) on a mangled weight, non-finite real
    outputs or outputs that depend on what the padded slots hold. AUC, figure and output
    changes are reported only, and so is the effect of appending padded slots: dynamic int8
    takes one activation scale per tensor, so extra slots (whose hidden activations are not
    zero before the tagger masks them) can move it slightly.
    """
    errors = weight_errors(fp32, int8)
    bad = {k: v for k, v in errors.items() if not v <= WEIGHT_STEPS}
    if bad:
        weight, steps = next(iter(bad.items()))
        raise HepsnakeError(
            name, f"quantised weight '{weight}' is {steps:.3g} steps off its fp32 value"
        )
    s32, s8 = session(fp32, threads), session(int8, threads)
    names = [o.name for o in s32.get_outputs()]
    class_names = list(module.hparams.class_names)
    n = len(class_names)
    o32, o8 = [outputs(s32, b) for b in batches], [outputs(s8, b) for b in batches]
    diffs = np.max([output_diffs(s8, b, x, b) for b, x in zip(batches, o32, strict=True)], axis=0)
    edges = np.array(output_diffs(s8, edge, outputs(s32, edge), edge))
    worst = np.maximum(diffs, edges)
    if not np.isfinite(worst).all():
        bad = names[int(np.argmax(~np.isfinite(worst)))]
        raise HepsnakeError(name, f"int8 model gives non-finite outputs ('{bad}')")
    checked = [*batches[:2], edge]
    padding = padding_diff(s8, module.spec, checked, extra=0)
    if not padding <= PADDING_TOLERANCE:
        raise HepsnakeError(
            name,
            f"int8 outputs change by {padding:.3g} with garbage in the padded constituent slots "
            f"(tolerance {PADDING_TOLERANCE:g})",
        )
    p32 = np.concatenate([np.stack(x[:n], -1) for x in o32])
    p8 = np.concatenate([np.stack(x[:n], -1) for x in o8])
    labels = np.concatenate([b["label"].numpy() for b in batches])
    auc32 = bench.signal_auc(p32, labels, class_names, signal)
    auc8 = bench.signal_auc(p8, labels, class_names, signal)
    delta = None if auc32 is None or auc8 is None else auc8 - auc32
    per_class = np.abs(p8 - p32).max(axis=0) if len(p8) else np.zeros(n)
    quantised = task_figures(module, batches, o8)
    return {
        "n_jets": len(labels),
        "max_abs_diff_vs_fp32": float(per_class.max()),
        "max_abs_diff_vs_fp32_per_class": dict(
            zip(class_names, map(float, per_class), strict=True)
        ),
        "max_abs_diff_vs_fp32_per_output": dict(zip(names, worst.tolist(), strict=True)),
        "mean_abs_diff_vs_fp32": float(np.abs(p8 - p32).mean()),
        "max_abs_diff_vs_fp32_edge_jets": float(edges[:n].max()),
        "tasks": {
            task: {"fp32": figures, "int8": quantised[task]}
            for task, figures in task_figures(module, batches, o32).items()
        },
        "auc_fp32": auc32,
        "auc_int8": auc8,
        "auc_delta": delta,
        "auc_signal": signal,
        "weight_error_max_steps": max(errors.values(), default=0.0),
        "n_quantised_weights": len(errors),
        "padding_max_abs_diff": padding,
        "extra_padding_max_abs_diff": padding_diff(s8, module.spec, checked, extra=5),
        "passed": True,
    }


def task_figures(
    module: TrainedTagger, batches: list[Batch], per_batch: list[list[np.ndarray]]
) -> dict[str, dict[str, Any]]:
    """:meth:`~hepsnake.models.tasks.base.Task.evaluate` of each task on ONNX outputs
    ``per_batch`` (one list per batch, in output order) over the real entries of ``batches``:
    e.g. a constituent classification's AUC, a regression's resolution. Only tasks whose
    exported fields are their prediction fields, whose truth fields the batches hold, and
    that have figures from a table alone (edge classification exports pair scores, not
    vertices; the jet classification's AUC needs the evaluate settings)."""
    figures: dict[str, dict[str, Any]] = {}
    stop = 0
    for task in module.model.tasks:
        names = task.export_names("onnx")
        start, stop = stop, stop + len(names)
        keys = {f: label_key(task.dataset, f) for f in task.truth()}
        if names != task.predict_names("onnx") or any(k not in batches[0] for k in keys.values()):
            continue
        table: dict[str, list[np.ndarray]] = {}
        for batch, got in zip(batches, per_batch, strict=True):
            mask = batch.get(f"{task.dataset}_mask", torch.ones(len(batch["label"]), dtype=bool))
            keep = mask.numpy()
            fields = {f: batch[k].numpy() for f, k in keys.items()}
            fields |= dict(zip(names, got[start:stop], strict=True))
            for field, values in fields.items():
                table.setdefault(field, []).append(values[keep])
            table.setdefault(valid_field(), []).append(np.ones(int(keep.sum()), dtype=bool))
        scored = task.evaluate({k: np.concatenate(v) for k, v in table.items()}, "onnx")
        if scored:
            figures[task.name] = scored
    return figures


def to_onnx(
    module: TrainedTagger,
    path: Path,
    model_name: str,
    meta: dict[str, Any],
    opset: int,
    checkpoint: str,
    athena: bool = False,
) -> None:
    """:func:`export_onnx` (or with ``athena`` :func:`~hepsnake.export.athena.export_athena`,
    ``meta`` then its provenance), with a failure of the exporter as one clear error line."""
    write = salt.export_athena if athena else export_onnx
    try:
        write(module.model, path, model_name, meta, opset)
    except HepsnakeError:
        raise
    except Exception as error:
        cause = error.__cause__ or error
        first = (str(cause).strip().splitlines() or [""])[0]
        raise HepsnakeError(
            checkpoint, f"cannot be exported to ONNX: {type(cause).__name__}: {first}"
        ) from error


def export(
    checkpoint: str,
    model_name: str,
    test: str,
    val: str,
    outdir: str,
    git_commit: str = "unknown",
    quantise: str = "dynamic",
    opset: int = 18,
    n_validate: int = 5000,
    n_latency: int = 300,
    threads: int = 1,
    signal: str = "sig",
    athena: bool = True,
) -> dict[str, Any]:
    """Export, quantise, validate and benchmark ``checkpoint``; write the outputs of ``outdir``
    (with ``athena`` also the Salt/Athena layout, validated per jet against ``model.onnx``).

    Validation and the AUCs use the first ``n_validate`` jets of ``test`` (plus edge-case
    jets built from them); static quantisation calibrates on jets of ``val``; latency is
    timed on ``n_latency`` single jets of ``test``, throughput in batches of 1000.
    """
    if quantise not in MODES:
        raise HepsnakeError("export: quantise", f"'{quantise}' is not one of {', '.join(MODES)}")
    module = load_module(checkpoint)
    out = Path(outdir)
    with job_scratch(out) as work:
        fp32, int8 = work / OUTPUTS[0], work / OUTPUTS[1]
        meta = model_metadata(module, model_name, git_commit, opset)
        log.info("export %s: ONNX opset %d", model_name, opset)
        to_onnx(module, fp32, model_name, meta, opset, checkpoint)
        batches = bench.load_batches(module, test, n_validate, 1000)
        if not batches:
            raise HepsnakeError(test, "no jets to validate the exported model on")
        edge = edge_jets(batches[0], module.spec, max_widths(module.spec, test))
        validation: dict[str, Any] = {
            "fp32": validate_fp32(fp32, module, batches, edge, str(out / OUTPUTS[0]), threads)
        }
        outputs = list(OUTPUTS)
        if athena:
            outputs.append(salt.FILE)
            log.info("export %s: Salt/Athena layout", model_name)
            provenance: dict[str, Any] = {
                "model": model_name,
                "class_names": list(module.hparams.class_names),
                "batched_model": OUTPUTS[0],
            } | {k: meta[k] for k in PROVENANCE}
            to_onnx(module, work / salt.FILE, model_name, provenance, opset, checkpoint, True)
            validation["athena"] = salt.validate_athena(
                work / salt.FILE, fp32, batches, edge, str(out / salt.FILE)
            )
        calibration = None
        if quantise == "static":
            names = input_names(module.model)
            calibration = [feeds(b, names) for b in bench.load_batches(module, val, 2000, 500)]
        log.info("export %s: %s int8 quantisation", model_name, quantise)
        quantise_model(fp32, int8, quantise, calibration)
        validation["int8"] = validate_int8(
            fp32, int8, module, batches, edge, str(out / OUTPUTS[1]), threads, signal
        )
        validation["int8"]["quantisation"] = quantise
        validation["checkpoint"] = str(checkpoint)
        validation["test"] = str(test)
        log.info("export %s: benchmark on CPU (%d thread(s))", model_name, threads)
        singles = bench.single_jets(batches, n_latency)
        result = bench.benchmark(module, fp32, int8, singles, batches, threads, signal=signal)
        result["model"] = model_name
        write_json(work / OUTPUTS[2], validation)
        write_json(work / OUTPUTS[3], result)
        bench.plot(result, work / OUTPUTS[4], model_name)
        out.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            with atomic_path(out / name) as final:
                os.replace(work / name, final)
    return {"validation": validation, "targets": result["targets"], "outdir": str(out)}
