"""The in-memory form readers hand to the converter: flat jet columns plus jagged collections."""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Jagged:
    """One constituent collection of a chunk: per-jet counts and flat per-constituent columns."""

    counts: np.ndarray
    fields: dict[str, np.ndarray]

    def select(self, mask: np.ndarray) -> "Jagged":
        """Keep the constituents of the jets where ``mask`` is true."""
        keep = np.repeat(mask, self.counts)
        return Jagged(self.counts[mask], {k: v[keep] for k, v in self.fields.items()})


@dataclass
class JetChunk:
    """A block of jets: jet-level columns (N,) and jagged constituent collections."""

    jets: dict[str, np.ndarray]
    collections: dict[str, Jagged] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.jets.values()))) if self.jets else 0

    def select(self, mask: np.ndarray) -> "JetChunk":
        """Keep the jets where ``mask`` is true, with their constituents."""
        return JetChunk(
            {k: v[mask] for k, v in self.jets.items()},
            {k: c.select(mask) for k, c in self.collections.items()},
        )


def pad(
    jagged: Jagged,
    max_n: int,
    dtype: np.dtype,
    sort_by: str | None = None,
) -> np.ndarray:
    """Scatter a jagged collection into a (N, max_n) structured array with a ``valid`` field.

    Real constituents are packed first (descending in ``sort_by`` when given) and truncated
    at ``max_n``; padded slots are zero with ``valid`` false. One numpy scatter over flat
    offsets, no per-jet Python work.
    """
    counts = jagged.counts.astype(np.int64)
    n_jets = len(counts)
    starts = np.zeros(n_jets, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    jet_of = np.repeat(np.arange(n_jets), counts)
    slot = np.arange(len(jet_of), dtype=np.int64) - np.repeat(starts, counts)
    order = None
    if sort_by is not None and len(jet_of):
        # stable lexsort: by jet, then by descending key, so the slot order is the sorted order
        order = np.lexsort((-jagged.fields[sort_by], jet_of))
    keep = slot < max_n
    out = np.zeros((n_jets, max_n), dtype=dtype)
    rows, cols = jet_of[keep], slot[keep]
    for name in dtype.names:
        if name == "valid":
            continue
        values = jagged.fields[name]
        if order is not None:
            values = values[order]
        out[name][rows, cols] = values[keep]
    out["valid"][rows, cols] = True
    return out


def iter_slices(n: int, step: int) -> Iterator[slice]:
    """Consecutive slices of at most ``step`` items covering ``range(n)``."""
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))
