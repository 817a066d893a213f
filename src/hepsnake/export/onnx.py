"""Export a trained tagger to ONNX: raw inputs in, every task's outputs out.

Inputs (in this order): ``jets_data`` (batch, features), then per constituent collection
``{c}_data`` (batch, n_c, features) float32 and ``{c}_mask`` (batch, n_c) bool, then
``params_data`` (batch, P) for parameterised models; batch and every n_c are dynamic.
Outputs: every task's :meth:`~hepsnake.models.tasks.base.Task.export` tensors under its
export names, the tagger's tasks in order (the jet classification's ``{model}_p{class}``
first): (batch,) for a jet-level task, (batch, n_c) or (batch, n_c, n_c) for a
constituent-level one, whose constituent axes are named ``n_{c}`` like the inputs'. Values
in padded slots of constituent-level outputs are meaningless. The norm dict lives inside
the graph.
"""

import copy
import io
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from hepsnake.models.tagger import Tagger
from hepsnake.models.tasks.base import Task

NOISY_LOGGERS = ("", "torch.onnx", "torch.export", "onnxscript", "onnx_ir", "onnxruntime")


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's progress logs and warnings (errors still show)."""
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def task_outputs(tagger: Tagger, out: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The exported tensors of the tagger's raw outputs ``out``: each task's
    :meth:`~hepsnake.models.tasks.base.Task.export`, in :func:`output_names` order."""
    return tuple(x for t in tagger.tasks for x in t.export(out[t.output_key]))


class OnnxTagger(nn.Module):
    """A tagger over named raw tensors, returning the tuple of :func:`task_outputs`.

    The tagger sets the padded constituent slots to exactly zero right after normalising
    them: neither garbage nor the normalised value of a padded slot reaches a MatMul, whose
    dynamic int8 quantisation takes its scale from the whole tensor, padding included.
    """

    def __init__(self, tagger: Tagger) -> None:
        super().__init__()
        tagger = copy.deepcopy(tagger).eval()
        self.collections = list(tagger.collections)
        self.has_jets = "jets" in tagger.norms
        self.has_params = tagger.param_norm is not None
        self.tagger = tagger

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        batch: dict[str, torch.Tensor] = {}
        if self.has_jets:
            batch["jets"] = inputs["jets_data"]
        if self.has_params:
            batch["params"] = inputs["params_data"]
        for c in self.collections:
            batch[c] = inputs[f"{c}_data"]
            batch[f"{c}_mask"] = inputs[f"{c}_mask"]
        return task_outputs(self.tagger, self.tagger(batch))


def input_names(tagger: Tagger) -> list[str]:
    """The ONNX input names of ``tagger``, in graph order."""
    names = ["jets_data"] if "jets" in tagger.norms else []
    for c in tagger.collections:
        names += [f"{c}_data", f"{c}_mask"]
    return names + (["params_data"] if tagger.param_norm is not None else [])


def output_names(model: str, tasks: Sequence[Task]) -> list[str]:
    """The export names of ``tasks`` (a tagger's tasks, in order) for ``model``."""
    return [n for t in tasks for n in t.export_names(model)]


def feeds(batch: Mapping[str, torch.Tensor], names: list[str]) -> dict[str, np.ndarray]:
    """ONNX inputs ``names`` from a loader batch (``jets``, ``{c}``, ``{c}_mask``, ``params``)."""
    out = {}
    for name in names:
        key = name.removesuffix("_data")
        out[name] = np.ascontiguousarray(batch[key].numpy())
    return out


def example_inputs(tagger: Tagger) -> dict[str, torch.Tensor]:
    """Small random inputs of distinct sizes (none 0 or 1, so no axis is specialised)."""
    gen = torch.Generator().manual_seed(0)
    batch, inputs = 3, {}
    if "jets" in tagger.norms:
        n_jet = len(tagger.spec.variables["jets"])
        inputs["jets_data"] = torch.rand(batch, n_jet, generator=gen)
    for i, c in enumerate(tagger.collections):
        n, f = 4 + i, len(tagger.spec.variables[c])
        inputs[f"{c}_data"] = torch.rand(batch, n, f, generator=gen)
        inputs[f"{c}_mask"] = torch.arange(n).expand(batch, n) < torch.tensor([[0], [2], [n]])
    if tagger.param_norm is not None:
        inputs["params_data"] = torch.rand(batch, len(tagger.spec.parameters), generator=gen)
    return inputs


def dynamic_shapes(tagger: Tagger) -> dict[str, dict[str, dict[int, Any]]]:
    """Batch axis of every input, constituent axis of each collection (one Dim each)."""
    batch = torch.export.Dim("batch")
    shapes: dict[str, dict[int, Any]] = {}
    if "jets" in tagger.norms:
        shapes["jets_data"] = {0: batch}
    for c in tagger.collections:
        n = torch.export.Dim(f"n_{c}")
        shapes[f"{c}_data"] = {0: batch, 1: n}
        shapes[f"{c}_mask"] = {0: batch, 1: n}
    if tagger.param_norm is not None:
        shapes["params_data"] = {0: batch}
    return {"inputs": shapes}


class Positional(nn.Module):
    """A module over a dict of named tensors, called with them positionally in ``names`` order."""

    def __init__(self, inner: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.inner = inner
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.inner(dict(zip(self.names, inputs, strict=True)))


def traced(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    outputs: list[str],
    opset: int,
    shapes: dict[str, dict[int, Any]],
) -> onnx.ModelProto:
    """The ONNX graph of ``module`` (called with a dict of named inputs, like ``example``):
    by the TorchScript exporter (well under a second for a small tagger), or by
    ``torch.export`` (tens of seconds: tracing plus decompositions) where the TorchScript
    exporter fails or no longer exists. ``shapes`` holds each input's dynamic axes (one
    ``torch.export.Dim`` each); those of the outputs follow from them (:func:`output_axes`)."""
    names = list(example)
    try:
        buffer = io.BytesIO()
        torch.onnx.export(
            Positional(module, names),
            tuple(example[n] for n in names),
            buffer,
            input_names=names,
            output_names=outputs,
            opset_version=opset,
            dynamic_axes={
                name: {axis: str(dim.__name__) for axis, dim in axes.items()}
                for name, axes in shapes.items()
            }
            | output_axes(module, example, outputs, shapes),
            dynamo=False,
        )
        # the graph optimisation torch.export's path runs (constant folding, no dead nodes)
        import onnxscript  # ~1.5 s to import: only when exporting

        return onnxscript.optimizer.optimize(onnx.load_model_from_string(buffer.getvalue()))
    except Exception as error:
        logging.getLogger("hepsnake").debug("TorchScript ONNX exporter failed (%s)", error)
    program = torch.onnx.export(
        module,
        (),
        kwargs={"inputs": example},
        input_names=names,
        output_names=outputs,
        opset_version=opset,
        dynamo=True,
        dynamic_shapes={"inputs": shapes},
        external_data=False,
        optimize=True,
        verbose=False,
    )
    assert program is not None
    return program.model_proto


def output_axes(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    outputs: list[str],
    shapes: dict[str, dict[int, Any]],
) -> dict[str, dict[int, str]]:
    """The dynamic axes of each output of ``module``: an output axis as long, on ``example``,
    as a dynamic input axis is that axis (the example's dynamic sizes are all distinct)."""
    sizes = {
        example[name].shape[axis]: str(dim.__name__)
        for name, axes in shapes.items()
        for axis, dim in axes.items()
    }
    with torch.no_grad():
        results = module(example)
    return {
        name: {axis: sizes[n] for axis, n in enumerate(result.shape) if n in sizes}
        for name, result in zip(outputs, results, strict=True)
    }


def save_checked(
    proto: onnx.ModelProto, path: str | Path, metadata: Mapping[str, str], doc_string: str = ""
) -> None:
    """Write ``proto`` at ``path`` (masks as products, ``metadata`` as properties), checked."""
    proto = masks_as_products(proto)
    proto.producer_name = "hepsnake"
    proto.doc_string = doc_string
    onnx.helper.set_model_props(proto, dict(metadata))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))


def export_onnx(
    tagger: Tagger, path: str | Path, model: str, metadata: Mapping[str, str], opset: int = 18
) -> None:
    """Write ``tagger`` as a checked ONNX model at ``path`` with ``metadata`` as properties,
    its outputs named after ``model``."""
    example = example_inputs(tagger)
    shapes = dynamic_shapes(tagger)["inputs"]
    outputs = output_names(model, tagger.tasks)
    with quiet():
        proto = traced(OnnxTagger(tagger), example, outputs, opset, shapes)
    save_checked(proto, path, metadata)


def masks_as_products(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ``Where(mask, hidden, 0)`` as ``hidden · float(mask)`` (in place; returned).

    Only where ``hidden`` lies downstream of a MatMul/Gemm: such activations are finite
    (padded slots were zeroed on entry), so the product equals the selection, and ONNX
    Runtime's broadcasting ``Mul`` is several times faster than its ``Where``. The ``Where``
    guarding the raw inputs stays, so NaN or inf in padded input slots still cannot leak.
    Constants left unused (the replaced zeros) are dropped.
    """
    graph = proto.graph
    constants = {t.name: t for t in graph.initializer}
    constants |= {
        n.output[0]: n.attribute[0].t
        for n in graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
    }
    hidden: set[str] = set()
    casts: dict[str, str] = {}
    nodes = []
    for node in graph.node:  # nodes are topologically sorted
        if node.op_type in ("MatMul", "Gemm") or any(i in hidden for i in node.input):
            hidden.update(node.output)
        mask, value, other = [*node.input, "", "", ""][:3]
        zero = other in constants and not numpy_helper.to_array(constants[other]).any()
        if node.op_type != "Where" or value not in hidden or not zero:
            nodes.append(node)
            continue
        if mask not in casts:
            casts[mask] = f"{mask}_as_float"
            nodes.append(
                onnx.helper.make_node(
                    "Cast", [mask], [casts[mask]], name=f"{mask}_cast", to=onnx.TensorProto.FLOAT
                )
            )
        nodes.append(
            onnx.helper.make_node("Mul", [value, casts[mask]], list(node.output), name=node.name)
        )
    used = {i for node in nodes for i in node.input} | {o.name for o in graph.output}
    del graph.node[:]  # without the zeros the replaced Where nodes read
    graph.node.extend(n for n in nodes if n.op_type != "Constant" or n.output[0] in used)
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    return proto


def metadata(model_path: str | Path) -> dict[str, str]:
    """The metadata properties of an ONNX file."""
    proto = onnx.load(str(model_path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads and no inter-op pool."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def outputs(sess: ort.InferenceSession, batch: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Every output of ``sess`` on a loader batch, in graph order."""
    return sess.run(None, feeds(batch, [i.name for i in sess.get_inputs()]))


def run(sess: ort.InferenceSession, batch: Mapping[str, torch.Tensor]) -> np.ndarray:
    """Probabilities (batch, classes) of a single-task ``sess`` (the jet classification's
    outputs only) on a loader batch; :func:`outputs` gives those of any model."""
    return np.stack(outputs(sess, batch), axis=-1)


def real_slots(sess: ort.InferenceSession, batch: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Per output of ``sess``, which of its entries on ``batch`` are about real constituents
    only: an axis named ``n_{c}`` (as :func:`dynamic_shapes` names them) is masked by
    ``{c}_mask``; a jet-level output is all real."""
    masks = []
    for output in sess.get_outputs():
        dims = output.shape
        keep = np.ones((len(batch["label"]),) + (1,) * (len(dims) - 1), dtype=bool)
        for axis, dim in enumerate(dims[1:], 1):
            if isinstance(dim, str) and f"{dim.removeprefix('n_')}_mask" in batch:
                mask = batch[f"{dim.removeprefix('n_')}_mask"].numpy()
                shape = [len(mask)] + [1] * (len(dims) - 1)
                shape[axis] = mask.shape[1]
                keep = keep & mask.reshape(shape)
        masks.append(keep)
    return masks
