"""Int8 quantisation of an exported model with ``onnxruntime.quantization``.

``dynamic``: QInt8 weights, activations quantised per call from their own range (after
``quant_pre_process``). ``static``: QDQ with activation ranges calibrated on given batches.
"""

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from hepsnake.export.onnx import quiet

MODES = ("dynamic", "static")


class Feeds(CalibrationDataReader):
    """Calibration inputs: one ONNX feed dict per call of ``get_next``."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self.feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def preprocess(fp32: str | Path, output: Path) -> None:
    """``quant_pre_process`` (shape inference, graph optimisation) with stale shapes dropped.

    ONNX Runtime's symbolic shape inference gives up on some graphs (attention's
    reshapes); those are pre-processed with ONNX's own shape inference only.
    """
    proto = onnx.load(str(fp32))
    del proto.graph.value_info[:]  # the exporter's shapes can disagree with the optimised graph
    stripped = output.with_name(f"stripped.{output.name}")
    onnx.save_model(proto, str(stripped))
    try:
        quant_pre_process(str(stripped), str(output))
    except (TypeError, ValueError, KeyError, AssertionError):
        quant_pre_process(str(stripped), str(output), skip_symbolic_shape=True)


def quantise(
    fp32: str | Path,
    output: str | Path,
    mode: str = "dynamic",
    calibration: Iterable[dict[str, np.ndarray]] | None = None,
) -> None:
    """Write the int8 version of ``fp32`` at ``output`` (its metadata properties kept).

    ``static`` needs ``calibration`` feeds (validation jets).
    """
    if mode not in MODES:
        raise ValueError(f"quantisation '{mode}' is not one of {MODES}")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        with quiet():
            quantise_file(fp32, pre, output, mode, calibration)
    source, proto = onnx.load(str(fp32)), onnx.load(str(output))
    props = {p.key: p.value for p in source.metadata_props} | {"quantisation": f"{mode} int8"}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(output))


def quantise_file(
    fp32: str | Path,
    pre: Path,
    output: str | Path,
    mode: str,
    calibration: Iterable[dict[str, np.ndarray]] | None,
) -> None:
    """Pre-process ``fp32`` into ``pre``, then quantise that into ``output``."""
    preprocess(fp32, pre)
    if mode == "dynamic":
        quantize_dynamic(pre, output, weight_type=QuantType.QInt8)
    else:
        if calibration is None:
            raise ValueError("static quantisation needs calibration inputs")
        quantize_static(
            pre,
            output,
            Feeds(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True},
        )


def weight_errors(fp32: str | Path, int8: str | Path) -> dict[str, float]:
    """Per quantised weight: max |dequantised int8 − fp32| in units of its quantisation step.

    A value above ~0.5 (or a weight whose shape changed, reported as inf) means the
    quantiser mangled it, e.g. transposed a shared initialiser.
    """
    originals = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(fp32)).graph.initializer}
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(int8)).graph.initializer}
    errors = {}
    for name, q in inits.items():
        base = name.removesuffix("_quantized")
        if base == name or base not in originals:
            continue
        scale = inits.get(f"{base}_scale")
        zero = inits.get(f"{base}_zero_point")
        if scale is None or zero is None:
            continue
        original = originals[base]
        if q.shape != original.shape:
            errors[base] = float("inf")
            continue
        if scale.size > 1:  # per channel: MatMul weights (K, N) are quantised along axis 1
            axis = next(a for a in reversed(range(q.ndim)) if q.shape[a] == scale.size)
            shape = [-1 if a == axis else 1 for a in range(q.ndim)]
            step, zero = scale.reshape(shape), zero.reshape(shape)
        else:
            step = scale
        dequantised = (q.astype(np.float32) - zero.astype(np.float32)) * step
        errors[base] = float(np.max(np.abs(dequantised - original) / step))
    return errors
