"""The ``predict`` stage: class probabilities of the test jets in a puma-readable ``jets`` table."""

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from hepsnake.data.loader import H5Batches
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.io.atomic import atomic_path
from hepsnake.io.h5 import set_attrs
from hepsnake.training.adversarial import AdversarialModule
from hepsnake.training.module import TaggerModule


def load_module(checkpoint: str | Path) -> TaggerModule:
    """A trained module (plain or adversarial) on the CPU, in eval mode."""
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]
    cls = AdversarialModule if "adversarial" in hparams else TaggerModule
    module = cls.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    return module.eval()


@torch.inference_mode()
def batch_probabilities(module: TaggerModule, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Softmax outputs (batch, classes) of ``module`` on one loader batch."""
    return module(batch)["logits"].float().softmax(-1).numpy()


def probabilities(
    module: TaggerModule, path: str, fixed: dict[str, float] | None = None, batch_size: int = 5000
) -> np.ndarray:
    """Softmax outputs (N, classes) for every jet of ``path``, in file order.

    Parameterised models are evaluated with every jet's parameters set to ``fixed``.
    """
    batches: H5Batches | WithParameters = H5Batches(path, module.spec, batch_size)
    if module.hparams.parameters:
        sampler = ParameterSampler(module.hparams.parameters)
        batches = WithParameters(batches, sampler, seed=0, fixed=fixed)
    outs = [batch_probabilities(module, batch) for batch in batches]
    return np.concatenate(outs) if outs else np.zeros((0, len(module.hparams.class_names)))


def score_columns(module: TaggerModule, path: str, model: str) -> dict[str, np.ndarray]:
    """``{model}_p{class}`` (and, for parameterised models, ``{model}_{par}{value}_p{class}``
    at every test value; the plain columns then hold the first test value)."""
    class_names = list(module.hparams.class_names)
    parameters = module.hparams.parameters
    points: list[tuple[str, dict[str, float] | None]] = [("", None)]
    if parameters:
        name = parameters["names"][0]
        values = parameters["test"][name]
        points = [(f"_{name}{v:g}", {name: v}) for v in values]
        points.insert(0, ("", points[0][1]))
    columns = {}
    for tag, fixed in points:
        probs = probabilities(module, path, fixed)
        for i, c in enumerate(class_names):
            columns[f"{model}{tag}_p{c}"] = probs[:, i].astype(np.float32)
    return columns


def with_columns(jets: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    """``jets`` with the extra float32 ``columns`` appended."""
    dtype = np.dtype(jets.dtype.descr + [(c, np.float32) for c in columns])
    out = np.empty(len(jets), dtype=dtype)
    for name in jets.dtype.names:
        out[name] = jets[name]
    for name, values in columns.items():
        out[name] = values
    return out


def predict(
    model_name: str, checkpoint: str, test: str, output: str, control: str | None = None
) -> dict[str, Any]:
    """Write ``output`` with dataset ``jets`` (test split) and ``control_jets`` when given.

    Parameterised models skip the control region: its jets carry no parameter values.
    """
    module = load_module(checkpoint)
    with_control = control and not module.hparams.parameters
    tables = {"jets": test} | ({"control_jets": control} if with_control else {})
    counts = {}
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        for name, path in tables.items():
            with h5py.File(path, "r") as h5:
                jets = h5["jets"][:]
            table = with_columns(jets, score_columns(module, path, model_name))
            out.create_dataset(name, data=table, compression="lzf", chunks=True)
            out[name].attrs["class_names"] = list(module.hparams.class_names)
            counts[name] = len(table)
        set_attrs(out, {"model": model_name, "checkpoint": str(checkpoint)})
    return counts
