"""Batches from a prepared FTAG-layout HDF5 file: contiguous slices read into fixed buffers.

No per-jet Python work: one HDF5 read per dataset per batch (types and dataspaces made once),
done by a background thread while the previous batch is turned into tensors (HDF5 releases
the GIL while it reads and decompresses), then per collection one strided copy per run of
adjacent same-typed input fields. Raw (unnormalised) values are returned; normalisation
lives inside the model.
"""

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import h5py
import numpy as np
import torch
from h5py import h5s, h5t
from numpy.lib import recfunctions as rfn

from hepsnake.config.contracts import Inputs
from hepsnake.errors import HepsnakeError
from hepsnake.io.files import open_h5
from hepsnake.names import input_fields


@dataclass
class InputSpec:
    """What a model reads: prepared fields per collection (:func:`~hepsnake.names.input_fields`:
    a transformed variable is read from its own field), dataset names, truncation, parameters."""

    variables: dict[str, list[str]]
    input_map: dict[str, str] = field(default_factory=dict)
    num_inputs: dict[str, int] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, inputs: Inputs, parameters: Sequence[str] | None = None) -> "InputSpec":
        return cls(
            variables=input_fields(inputs),
            input_map=dict(inputs.input_map),
            num_inputs=dict(inputs.num_inputs),
            parameters=list(parameters or []),
        )

    @property
    def constituents(self) -> list[str]:
        return [c for c in self.variables if c != "jets"]

    def dataset(self, collection: str) -> str:
        return self.input_map.get(collection, collection)


Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FieldRun:
    """Input columns ``[column, column + count)``: adjacent fields of one dtype from ``offset``."""

    column: int
    count: int
    offset: int
    dtype: np.dtype


@lru_cache(maxsize=64)
def field_runs(dtype: np.dtype, names: tuple[str, ...]) -> tuple[FieldRun, ...] | None:
    """``names`` of structured ``dtype`` as runs of adjacent same-typed fields, in order.

    None if a field is not a scalar (then the generic ``structured_to_unstructured`` is used).
    """
    runs: list[FieldRun] = []
    for column, name in enumerate(names):
        ftype, offset = dtype.fields[name][:2]
        if ftype.shape or ftype.names is not None or ftype.hasobject:
            return None
        last = runs[-1] if runs else None
        if last and last.dtype == ftype and last.offset + last.count * ftype.itemsize == offset:
            runs[-1] = FieldRun(last.column, last.count + 1, last.offset, ftype)
        else:
            runs.append(FieldRun(column, 1, offset, ftype))
    return tuple(runs)


def gather(block: np.ndarray, names: list[str], width: int | None = None) -> np.ndarray:
    """Float32 ``(len(block), [width,] len(names))`` of fields ``names`` of a C-contiguous block.

    Each run of adjacent same-typed fields is one strided view of the block's bytes, copied
    (and cast) straight into its output columns; ``width`` keeps the first constituent columns.
    """
    runs = field_runs(block.dtype, tuple(names))
    lead = block.shape if width is None else (len(block), width)
    if runs is None:
        values = rfn.structured_to_unstructured(block[..., :width][names], dtype=np.float32)
        return np.ascontiguousarray(values)
    out = np.empty((*lead, len(names)), dtype=np.float32)
    for run in runs:
        source = np.ndarray(
            (*lead, run.count),
            dtype=run.dtype,
            buffer=block,
            offset=run.offset,
            strides=(*block.strides, run.dtype.itemsize),
        )
        np.copyto(out[..., run.column : run.column + run.count], source, casting="unsafe")
    return out


class SliceReader:
    """Reads rows ``[start, stop)`` of a dataset into the head of a ``(rows, ...)`` buffer.

    Same as ``read_direct`` but with the HDF5 memory type and dataspaces made once: h5py
    rebuilds the compound type on every call, which can cost more than the read itself.
    """

    def __init__(self, ds: h5py.Dataset, rows: int) -> None:
        self.ds, self.rows = ds, rows
        self.tail = ds.shape[1:]
        self.mtype = h5t.py_create(ds.dtype)
        self.fspace = ds.id.get_space()
        self.mspace = h5s.create_simple((rows, *self.tail))

    def buffer(self) -> np.ndarray:
        return np.empty((self.rows, *self.tail), dtype=self.ds.dtype)

    def read(self, buffer: np.ndarray, start: int, stop: int) -> None:
        zeros = (0,) * len(self.tail)
        count = (stop - start, *self.tail)
        self.fspace.select_hyperslab((start, *zeros), count)
        self.mspace.select_hyperslab((0, *zeros), count)
        self.ds.id.read(self.mspace, self.fspace, buffer, self.mtype)


class H5Batches:
    """Iterate over batches of a prepared file, in contiguous slices of ``batch_size`` jets.

    ``shuffle`` (training) permutes the order of the slices (seeded by ``seed`` and the epoch);
    the files are already shuffled on write, so each slice is a mixed batch. Its slices are
    as many as ``batch_size`` needs and equal to a jet (not ``batch_size`` and a remainder):
    a last batch of a few jets would take a full-size optimiser step on a noisy gradient.
    With ``rank`` and ``world_size`` each process takes every ``world_size``-th slice (DDP).
    The next slice is read in a background thread while the current one is converted and used.
    """

    def __init__(
        self,
        path: str,
        spec: InputSpec,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
        extra_fields: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.path = path
        self.spec = spec
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self.extra = tuple(extra_fields)  # (dataset, field): labels of the tasks
        with open_h5(path, "split", ["jets"]) as h5:
            self.n_jets = h5["jets"].shape[0] if limit is None else min(limit, h5["jets"].shape[0])
            self._check(h5)

    def _check(self, h5: h5py.File) -> None:
        for coll, variables in self.spec.variables.items():
            name = self.spec.dataset(coll)
            if name not in h5:
                raise HepsnakeError(self.path, f"no dataset '{name}' for inputs '{coll}'")
            names = h5[name].dtype.names
            missing = [v for v in variables if v not in names]
            if missing:
                raise HepsnakeError(self.path, f"variable '{missing[0]}' not in '{name}'")
        jet_names = h5["jets"].dtype.names
        for needed in ("flavour_label", "train_weight", *self.spec.parameters):
            if needed not in jet_names:
                raise HepsnakeError(self.path, f"jet field '{needed}' missing")
        for dataset, name in self.extra:
            ds = self.spec.dataset(dataset)
            if ds not in h5 or name not in (h5[ds].dtype.names or ()):
                raise HepsnakeError(self.path, f"field '{name}' missing in dataset '{dataset}'")

    def __len__(self) -> int:
        return len(self.slices())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def slices(self) -> list[tuple[int, int]]:
        """This rank's (start, stop) jet slices of the epoch, in the order they are read."""
        if self.shuffle:  # ceil(n / batch_size) slices, their sizes within one jet
            n_slices = -(-self.n_jets // self.batch_size)
            edges = np.linspace(0, self.n_jets, n_slices + 1).round().astype(np.int64)
        else:
            edges = np.append(np.arange(0, self.n_jets, self.batch_size), self.n_jets)
        bounds = np.stack([edges[:-1], edges[1:]], axis=1)
        if self.shuffle:
            bounds = np.random.default_rng([self.seed, self.epoch]).permutation(bounds)
        if self.world_size > 1:
            # every DDP rank must run the same number of steps, or the collectives hang
            bounds = bounds[: len(bounds) - len(bounds) % self.world_size]
        return [(int(a), int(b)) for a, b in bounds[self.rank :: self.world_size]]

    def __iter__(self) -> Iterator[Batch]:
        slices = self.slices()
        names = {c: self.spec.dataset(c) for c in self.spec.variables}
        names |= {d: self.spec.dataset(d) for d, _ in self.extra if d != "jets"}
        with (
            open_h5(self.path, "split") as h5,
            ThreadPoolExecutor(1, "h5batches-read") as pool,
        ):
            readers = {n: SliceReader(h5[n], self.batch_size) for n in {*names.values(), "jets"}}
            # two buffer sets: one is read into while the other is converted
            buffers = [{n: r.buffer() for n, r in readers.items()} for _ in range(2)]

            def read(i: int) -> None:
                for name, reader in readers.items():
                    reader.read(buffers[i % 2][name], *slices[i])

            pending = pool.submit(read, 0) if slices else None
            for i, (start, stop) in enumerate(slices):
                assert pending is not None
                pending.result()
                if i + 1 < len(slices):
                    pending = pool.submit(read, i + 1)
                n, current = stop - start, buffers[i % 2]
                blocks = {c: current[name][:n] for c, name in names.items()}
                yield self.to_tensors(blocks, current["jets"][:n])

    def to_tensors(self, blocks: dict[str, np.ndarray], jets: np.ndarray) -> Batch:
        """Float inputs, masks, labels, weights and parameters of one batch (fresh memory)."""
        batch: Batch = {}
        for coll, variables in self.spec.variables.items():
            block = np.ascontiguousarray(blocks[coll])  # slices of the read buffers already are
            if block.ndim != 2:
                batch[coll] = torch.from_numpy(gather(block, variables))
                continue
            # real constituents are packed first: drop the columns no jet of the batch uses
            valid = block["valid"].copy()  # contiguous: cheaper to count and to trim
            used = int(np.count_nonzero(valid, axis=1).max()) if len(block) else 0
            limit = self.spec.num_inputs.get(coll)
            width = min(max(1, min(used, limit or used)), block.shape[1])
            batch[coll] = torch.from_numpy(gather(block, variables, width))
            batch[f"{coll}_mask"] = torch.from_numpy(valid[:, :width].copy())
        batch["label"] = torch.from_numpy(jets["flavour_label"].astype(np.int64))
        batch["weight"] = torch.from_numpy(jets["train_weight"].astype(np.float32))
        if self.spec.parameters:
            batch["params"] = torch.from_numpy(
                gather(np.ascontiguousarray(jets), self.spec.parameters)
            )
        for dataset, name in self.extra:
            if dataset == "jets":
                batch[name] = torch.from_numpy(jets[name].copy())
            else:
                width = batch[f"{dataset}_mask"].shape[1]
                values = np.ascontiguousarray(blocks[dataset][:, :width][name])
                batch[f"{dataset}/{name}"] = torch.from_numpy(values)
        return batch
