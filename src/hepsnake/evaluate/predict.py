"""The ``predict`` stage: class probabilities of the test jets in a puma-readable ``jets`` table."""

import dataclasses
from typing import Any

import h5py
import numpy as np
import torch

from hepsnake.data.loader import Batch, H5Batches, InputSpec
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.io.atomic import atomic_path
from hepsnake.io.files import open_h5
from hepsnake.io.h5 import set_attrs
from hepsnake.models.checkpoint import TrainedTagger, load_module
from hepsnake.names import LABEL, point_tag, prob_column, valid_field


@torch.inference_mode()
def batch_probabilities(module: TrainedTagger, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Softmax outputs (batch, classes) of ``module`` on one loader batch."""
    return module(batch)["logits"].float().softmax(-1).numpy()


@torch.inference_mode()
def batch_task_fields(
    module: TrainedTagger, batch: dict[str, torch.Tensor], model: str
) -> dict[str, np.ndarray]:
    """Every task's prediction fields but the jet classification's, on one loader batch."""
    out = module(batch)
    fields = {}
    for task in module.model.tasks[1:]:
        fields |= {k: v.numpy() for k, v in task.predict(out[task.output_key], model).items()}
    return fields


class WithoutParameterFields(H5Batches):
    """Batches of a file whose jets have none of the parameter fields (the control region):
    every jet's parameters are NaN, i.e. background, for :class:`WithParameters` to fill."""

    def __init__(self, path: str, spec: InputSpec, batch_size: int) -> None:
        super().__init__(path, dataclasses.replace(spec, parameters=[]), batch_size)
        self.n_params = len(spec.parameters)

    def to_tensors(self, blocks: dict[str, np.ndarray], jets: np.ndarray) -> Batch:
        batch = super().to_tensors(blocks, jets)
        batch["params"] = torch.full((len(jets), self.n_params), torch.nan)
        return batch


def model_batches(
    module: TrainedTagger, path: str, fixed: dict[str, float] | None, batch_size: int
) -> H5Batches | WithParameters:
    """The batches of ``path`` in file order, parameters set as :func:`probabilities` says."""
    spec = module.spec
    if not module.hparams.parameters:
        return H5Batches(path, spec, batch_size)
    with open_h5(path, "split", ["jets"]) as h5:
        fields = h5["jets"].dtype.names
    reader = H5Batches if any(n in fields for n in spec.parameters) else WithoutParameterFields
    sampler = ParameterSampler(module.hparams.parameters)
    return WithParameters(reader(path, spec, batch_size), sampler, seed=0, fixed=fixed)


def probabilities(
    module: TrainedTagger, path: str, fixed: dict[str, float] | None = None, batch_size: int = 5000
) -> tuple[np.ndarray, np.ndarray | None]:
    """Softmax outputs (N, classes) for every jet of ``path``, in file order, and for
    parameterised models the (N, parameters) values they were evaluated at (else None).

    Parameterised models are evaluated with every jet's parameters set to ``fixed``; with
    ``fixed`` None, each jet at its own: signal jets at their true values, background jets
    (and every jet of a file without the parameter fields) at values drawn from
    ``parameters.train`` with the ``prob`` weights, from a fixed seed.
    """
    outs, params = [], []
    for batch in model_batches(module, path, fixed, batch_size):
        outs.append(batch_probabilities(module, batch))
        if "params" in batch:
            params.append(batch["params"].numpy())
    if not outs:
        return np.zeros((0, len(module.hparams.class_names))), None
    return np.concatenate(outs), np.concatenate(params) if params else None


def parameter_points(parameters: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Column tag → parameter values: each ``test`` value of each parameter (``train`` values
    where it has no ``test`` list), the other parameters at their first value. A scan along
    each parameter, not a grid."""
    names = parameters["names"]
    values = {
        n: [float(v) for v in parameters["test"].get(n, parameters["train"][n])] for n in names
    }
    first = {n: v[0] for n, v in values.items()}
    return {point_tag(n, v): first | {n: v} for n in names for v in values[n]}


def score_columns(module: TrainedTagger, path: str, model: str) -> dict[str, np.ndarray]:
    """``{model}_p{class}`` (:func:`~hepsnake.names.prob_column`), each jet at its own
    parameters (see :func:`probabilities`), and for parameterised models ``{model}_{par}``
    (the value each jet's plain columns were evaluated at) and ``{model}_{par}{value}_p{class}``
    at every :func:`parameter_points`."""
    class_names = list(module.hparams.class_names)
    parameters = module.hparams.parameters
    points: dict[str, dict[str, float] | None] = {"": None}
    if parameters:
        points |= parameter_points(parameters)
    done: dict[tuple[tuple[str, float], ...] | None, np.ndarray] = {}
    columns = {}
    for tag, fixed in points.items():
        key = None if fixed is None else tuple(sorted(fixed.items()))
        if key not in done:
            done[key], used = probabilities(module, path, fixed)
            if fixed is None and used is not None:
                for i, name in enumerate(parameters["names"]):
                    columns[f"{model}_{name}"] = used[:, i].astype(np.float32)
        for i, c in enumerate(class_names):
            columns[prob_column(model, c, tag)] = done[key][:, i].astype(np.float32)
    return columns


def task_tables(
    module: TrainedTagger, path: str, model: str, batch_size: int = 5000
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The other tasks' fields, each jet at its own parameters: jet-level columns (N,) and
    per collection a structured (N, max) table of the constituent-level fields, the
    ``valid`` flags and the truth fields the tasks score against (padding: NaN / -1)."""
    tasks = module.model.tasks[1:]
    if not tasks:
        return {}, {}
    parts: dict[str, list[np.ndarray]] = {}
    for batch in model_batches(module, path, None, batch_size):
        for name, values in batch_task_fields(module, batch, model).items():
            parts.setdefault(name, []).append(values)
    columns: dict[str, np.ndarray] = {}
    tables: dict[str, np.ndarray] = {}
    with open_h5(path, "split") as h5:
        for task in tasks:
            names = list(task.predict_names(model))
            if task.dataset == "jets":
                columns |= {n: np.concatenate(parts[n]).astype(np.float32) for n in names}
                continue
            source = h5[module.spec.dataset(task.dataset)]
            if task.dataset not in tables:
                keep = [
                    valid_field(),
                    *(f for t in tasks if t.dataset == task.dataset for f in t.truth()),
                ]
                tables[task.dataset] = source.fields(list(dict.fromkeys(keep)))[:]
            width = source.shape[1]
            for name in names:
                padded = [
                    np.pad(v, ((0, 0), (0, width - v.shape[1])), constant_values=np.nan)
                    for v in parts[name]
                ]
                tables[task.dataset] = with_columns(
                    tables[task.dataset], {name: np.concatenate(padded)}
                )
    return columns, tables


def with_columns(jets: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    """``jets`` (a table, (N,) or (N, max)) with the extra float32 ``columns`` appended."""
    dtype = np.dtype(jets.dtype.descr + [(c, np.float32) for c in columns])
    out = np.empty(jets.shape, dtype=dtype)
    for name in jets.dtype.names:
        out[name] = jets[name]
    for name, values in columns.items():
        out[name] = values
    return out


def predict(
    model_name: str, checkpoint: str, test: str, output: str, control: str | None = None
) -> dict[str, Any]:
    """Write ``output`` with dataset ``jets`` (test split) and ``control_jets`` when given,
    and a (N, max) dataset per collection with constituent-level task outputs (test split).

    Control jets carry no parameter values: parameterised models see them as background.
    """
    module = load_module(checkpoint)
    tables = {"jets": test} | ({"control_jets": control} if control else {})
    counts = {}
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        for name, path in tables.items():
            with open_h5(path, "split", ["jets"]) as h5:
                jets = h5["jets"][:]
                unit = h5["jets"].attrs.get("energy_unit")
            columns = score_columns(module, path, model_name)
            extra, constituents = (
                task_tables(module, path, model_name) if name == "jets" else ({}, {})
            )
            table = with_columns(jets, columns | extra)
            out.create_dataset(name, data=table, compression="lzf", chunks=True)
            for collection, values in constituents.items():
                out.create_dataset(collection, data=values, compression="lzf", chunks=True)
            out[name].attrs["class_names"] = list(module.hparams.class_names)
            out[name].attrs[LABEL] = list(module.hparams.class_names)
            if unit is not None:
                out[name].attrs["energy_unit"] = unit
            counts[name] = len(table)
        set_attrs(out, {"model": model_name, "checkpoint": str(checkpoint)})
    return counts
