"""Batches from a prepared FTAG-layout HDF5 file: contiguous ``read_direct`` into fixed buffers.

No per-jet Python work: one read per dataset per batch, one structured-to-float copy per
collection. Raw (unnormalised) values are returned; normalisation lives inside the model.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import torch
from numpy.lib import recfunctions as rfn

from hepsnake.errors import HepsnakeError


@dataclass
class InputSpec:
    """What a model reads: variables per collection, dataset names, truncation, labels."""

    variables: dict[str, list[str]]
    input_map: dict[str, str] = field(default_factory=dict)
    num_inputs: dict[str, int] = field(default_factory=dict)
    label_map: dict[int, int] | None = None
    parameters: list[str] = field(default_factory=list)

    @classmethod
    def from_config(
        cls, inputs: dict[str, Any], parameters: list[str] | None = None
    ) -> "InputSpec":
        label_map = inputs.get("label_map")
        return cls(
            variables={k: list(v) for k, v in inputs["variables"].items()},
            input_map=dict(inputs.get("input_map", {})),
            num_inputs=dict(inputs.get("num_inputs", {})),
            label_map={int(k): int(v) for k, v in label_map.items()} if label_map else None,
            parameters=list(parameters or []),
        )

    @property
    def constituents(self) -> list[str]:
        return [c for c in self.variables if c != "jets"]

    def dataset(self, collection: str) -> str:
        return self.input_map.get(collection, collection)


Batch = dict[str, torch.Tensor]


class H5Batches:
    """Iterate over batches of a prepared file, in contiguous slices of ``batch_size`` jets.

    ``shuffle`` permutes the order of the slices (seeded by ``seed`` and the epoch); the
    files are already shuffled on write, so each slice is a mixed batch. With ``rank`` and
    ``world_size`` each process takes every ``world_size``-th slice (DDP).
    """

    def __init__(
        self,
        path: str,
        spec: InputSpec,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
        extra_jet_fields: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.spec = spec
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self.extra = extra_jet_fields
        with h5py.File(path, "r") as h5:
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
        for needed in ("label", "train_weight", *self.spec.parameters, *self.extra):
            if needed not in jet_names:
                raise HepsnakeError(self.path, f"jet field '{needed}' missing")

    def __len__(self) -> int:
        n_slices = -(-self.n_jets // self.batch_size)
        return len(range(self.rank, n_slices, self.world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def starts(self) -> np.ndarray:
        starts = np.arange(0, self.n_jets, self.batch_size)
        if self.shuffle:
            starts = np.random.default_rng([self.seed, self.epoch]).permutation(starts)
        return starts[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[Batch]:
        with h5py.File(self.path, "r") as h5:
            datasets = {c: h5[self.spec.dataset(c)] for c in self.spec.variables}
            jets_ds = h5["jets"]
            buffers = {
                c: np.empty((self.batch_size, *ds.shape[1:]), dtype=ds.dtype)
                for c, ds in datasets.items()
            }
            jets_buffer = buffers.get("jets", np.empty(self.batch_size, dtype=jets_ds.dtype))
            for start in self.starts():
                stop = min(start + self.batch_size, self.n_jets)
                n = stop - start
                for coll, ds in datasets.items():
                    ds.read_direct(buffers[coll], np.s_[start:stop], np.s_[0:n])
                if "jets" not in datasets:
                    jets_ds.read_direct(jets_buffer, np.s_[start:stop], np.s_[0:n])
                yield self.to_tensors({c: b[:n] for c, b in buffers.items()}, jets_buffer[:n])

    def to_tensors(self, blocks: dict[str, np.ndarray], jets: np.ndarray) -> Batch:
        """Float inputs, masks, labels, weights and parameters of one batch."""
        batch: Batch = {}
        for coll, variables in self.spec.variables.items():
            block = blocks[coll]
            limit = self.spec.num_inputs.get(coll)
            if block.ndim == 2:
                # real constituents are packed first: drop the columns no jet of the batch uses
                used = int(block["valid"].sum(1).max()) if len(block) else 0
                block = block[:, : max(1, min(used, limit or used))]
            values = rfn.structured_to_unstructured(block[variables], dtype=np.float32)
            batch[coll] = torch.from_numpy(np.ascontiguousarray(values))
            if block.ndim == 2:
                batch[f"{coll}_mask"] = torch.from_numpy(np.ascontiguousarray(block["valid"]))
        labels = jets["label"].astype(np.int64)
        if self.spec.label_map is not None:
            lookup = np.full(max(self.spec.label_map) + 1, -1, dtype=np.int64)
            for raw, cls in self.spec.label_map.items():
                lookup[raw] = cls
            labels = lookup[labels]
        batch["label"] = torch.from_numpy(labels)
        batch["weight"] = torch.from_numpy(jets["train_weight"].astype(np.float32))
        if self.spec.parameters:
            params = rfn.structured_to_unstructured(jets[self.spec.parameters], dtype=np.float32)
            batch["params"] = torch.from_numpy(np.ascontiguousarray(params))
        for name in self.extra:
            batch[name] = torch.from_numpy(np.ascontiguousarray(jets[name]))
        return batch
