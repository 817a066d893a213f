"""The ``predict`` stage: every task's predictions for the test jets, in a puma-readable
``jets`` table (and a (N, max) table per collection of constituent-level tasks)."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import torch

from hepsnake.config.contracts import Parameters
from hepsnake.data.loader import Batch, H5Batches, InputSpec
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.io.atomic import atomic_path
from hepsnake.io.files import open_h5
from hepsnake.io.h5 import set_attrs
from hepsnake.models.checkpoint import TrainedTagger, load_module
from hepsnake.models.tasks.base import Task
from hepsnake.names import LABEL, point_tag, valid_field


@torch.inference_mode()
def batch_fields(
    module: TrainedTagger, batch: dict[str, torch.Tensor], tasks: Sequence[Task], model: str
) -> dict[str, np.ndarray]:
    """The prediction fields of ``tasks`` (:meth:`~hepsnake.models.tasks.base.Task.predict`,
    named after ``model``) on one loader batch."""
    out = module(batch)
    return {
        name: values.numpy()
        for task in tasks
        for name, values in task.predict(out[task.output_key], model).items()
    }


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
    """The batches of ``path`` in file order, parameters set as :func:`task_fields` says."""
    spec = module.spec
    if not module.trained.parameters:
        return H5Batches(path, spec, batch_size)
    with open_h5(path, "split", ["jets"]) as h5:
        fields = h5["jets"].dtype.names
    reader = H5Batches if any(n in fields for n in spec.parameters) else WithoutParameterFields
    sampler = ParameterSampler(module.trained.parameters)
    return WithParameters(reader(path, spec, batch_size), sampler, seed=0, fixed=fixed)


def task_fields(
    module: TrainedTagger,
    path: str,
    tasks: Sequence[Task],
    model: str,
    fixed: dict[str, float] | None = None,
    batch_size: int = 5000,
) -> tuple[dict[str, list[np.ndarray]], np.ndarray | None]:
    """Per prediction field of ``tasks`` (named after ``model``) its values on each batch of
    ``path``, in file order, and for parameterised models the (N, parameters) values they
    were evaluated at (else None).

    Parameterised models are evaluated with every jet's parameters set to ``fixed``; with
    ``fixed`` None, each jet at its own: signal jets at their true values, background jets
    (and every jet of a file without the parameter fields) at values drawn from
    ``parameters.train`` with the ``prob`` weights, from a fixed seed.
    """
    parts: dict[str, list[np.ndarray]] = {}
    params = []
    for batch in model_batches(module, path, fixed, batch_size):
        for name, values in batch_fields(module, batch, tasks, model).items():
            parts.setdefault(name, []).append(values)
        if "params" in batch:
            params.append(batch["params"].numpy())
    return parts, np.concatenate(params) if params else None


def parameter_points(parameters: Parameters) -> dict[str, dict[str, float]]:
    """Column tag → parameter values: each ``test`` value of each parameter (``train`` values
    where it has no ``test`` list), the other parameters at their first value. A scan along
    each parameter, not a grid."""
    names = parameters.names
    values = {n: [float(v) for v in parameters.test.get(n, parameters.train[n])] for n in names}
    first = {n: v[0] for n, v in values.items()}
    return {point_tag(n, v): first | {n: v} for n in names for v in values[n]}


def joined(parts: dict[str, list[np.ndarray]], name: str) -> np.ndarray:
    """Field ``name``'s batches joined as float32 (none for a file without jets)."""
    return np.concatenate(parts.get(name) or [np.zeros(0)]).astype(np.float32)


def point_fields(
    module: TrainedTagger, path: str, tasks: Sequence[Task], model: str
) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per :func:`parameter_points` tag of a parameterised model, the batches of the fields of
    the ``scanned`` tasks among ``tasks`` (named after ``model``; see :func:`task_fields`)
    with every jet at that point; each distinct point is evaluated once."""
    parameters = module.trained.parameters
    scanned = [t for t in tasks if t.scanned]
    if not (parameters and scanned):
        return {}
    done: dict[tuple[tuple[str, float], ...], dict[str, list[np.ndarray]]] = {}
    out = {}
    for tag, fixed in parameter_points(parameters).items():
        key = tuple(sorted(fixed.items()))
        if key not in done:
            done[key] = task_fields(module, path, scanned, model, fixed)[0]
        out[tag] = done[key]
    return out


def constituent_tables(
    module: TrainedTagger,
    path: str,
    tasks: Sequence[Task],
    model: str,
    parts: dict[str, list[np.ndarray]],
) -> dict[str, np.ndarray]:
    """Per collection a structured (N, max) table of the constituent-level fields of
    ``tasks`` (their batches ``parts``), the ``valid`` flags and the truth fields the tasks
    score against (padding: NaN / -1)."""
    tables: dict[str, np.ndarray] = {}
    with open_h5(path, "split") as h5:
        for task in tasks:
            if task.dataset == "jets":
                continue
            source = h5[module.spec.dataset(task.dataset)]
            if task.dataset not in tables:
                keep = [
                    valid_field(),
                    *(f for t in tasks if t.dataset == task.dataset for f in t.truth()),
                ]
                tables[task.dataset] = source.fields(list(dict.fromkeys(keep)))[:]
            width = source.shape[1]
            for name in task.predict_names(model):
                padded = [
                    np.pad(v, ((0, 0), (0, width - v.shape[1])), constant_values=np.nan)
                    for v in parts[name]
                ]
                tables[task.dataset] = with_columns(
                    tables[task.dataset], {name: np.concatenate(padded)}
                )
    return tables


def predicted(
    module: TrainedTagger, path: str, model: str, constituents: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every task's prediction fields for the jets of ``path``, each jet at its own
    parameters (:func:`task_fields`): the jet-level columns, and (with ``constituents``) the
    :func:`constituent_tables`. A parameterised model's columns start with ``{model}_{par}``,
    the value each jet's plain columns were evaluated at; a ``scanned`` task's plain columns
    are followed by its columns at each parameter point (:func:`point_fields`): its fields of
    the model named ``{model}{point}``, e.g. ``{model}_{par}{value}_p{class}``."""
    tasks = [t for t in module.model.tasks if constituents or t.dataset == "jets"]
    own, used = task_fields(module, path, tasks, model)
    columns = {}
    if used is not None:
        for i, name in enumerate(module.trained.parameters.names):
            columns[f"{model}_{name}"] = used[:, i].astype(np.float32)
    points = point_fields(module, path, tasks, model)
    for task in (t for t in tasks if t.dataset == "jets"):
        columns |= {name: joined(own, name) for name in task.predict_names(model)}
        for tag, parts in points.items() if task.scanned else ():
            names = zip(task.predict_names(model), task.predict_names(model + tag), strict=True)
            columns |= {name: joined(parts, plain) for plain, name in names}
    return columns, constituent_tables(module, path, tasks, model, own)


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
    each with every jet-level task's columns, and a (N, max) dataset per collection with
    the constituent-level tasks' fields (test split; see :func:`predicted`).

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
            columns, constituents = predicted(module, path, model_name, name == "jets")
            table = with_columns(jets, columns)
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
