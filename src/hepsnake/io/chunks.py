"""The in-memory form readers hand to the converter: flat jet columns plus jagged collections."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Jagged:
    """One constituent collection of a chunk: per-jet counts and flat per-constituent columns."""

    counts: np.ndarray
    fields: dict[str, np.ndarray]

    def select(self, mask: np.ndarray) -> "Jagged":
        """Keep the constituents of the jets where ``mask`` is true (their indices found once
        and taken from every field: half the time of a boolean mask per field)."""
        keep = np.flatnonzero(np.repeat(mask, self.counts))
        return Jagged(self.counts[mask], {k: v.take(keep) for k, v in self.fields.items()})


@dataclass
class JetChunk:
    """A block of jets: jet-level columns (N,) and jagged constituent collections.

    ``aux`` holds per-jet columns read only for the cuts (never written).
    """

    jets: dict[str, np.ndarray]
    collections: dict[str, Jagged] = field(default_factory=dict)
    aux: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.jets.values()))) if self.jets else 0

    def select(self, mask: np.ndarray) -> "JetChunk":
        """Keep the jets where ``mask`` is true, with their constituents (the chunk itself
        when every jet is kept: no copy)."""
        if mask.all():
            return self
        return JetChunk(
            {k: v[mask] for k, v in self.jets.items()},
            {k: c.select(mask) for k, c in self.collections.items()},
            {k: v[mask] for k, v in self.aux.items()},
        )


def exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive blocks of ``counts`` items."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def descending_key(values: np.ndarray) -> np.ndarray | None:
    """float32 ``values`` as uint32 that sort like ``-values`` (NaN last); None otherwise.

    -0.0 and +0.0 map to the same key, as they compare equal. float64 values that are all
    exactly float32 take the same path.
    """
    if values.dtype == np.float64:
        with np.errstate(over="ignore", invalid="ignore"):
            narrow = values.astype(np.float32)
        same = (narrow == values) | (np.isnan(values) & np.isnan(narrow))
        if not same.all():
            return None
        values = narrow
    if values.dtype != np.float32:
        return None
    bits = (values + np.float32(0)).view(np.uint32)  # -0.0 -> +0.0
    ascending = np.where(bits >> 31 != 0, ~bits, bits | np.uint32(0x80000000))
    descending = ~ascending
    descending[np.isnan(values)] = np.uint32(0xFFFFFFFF)
    return descending


def segment_order(jet_of: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Permutation grouping by ``jet_of`` (non-decreasing), descending ``key`` within a jet.

    Ties keep their original order, exactly as ``np.lexsort((-key, jet_of))``.
    """
    descending = descending_key(key)
    if descending is None:
        return np.lexsort((-key, jet_of))
    # one 64-bit key: jet in the high word, the order-preserving key in the low word. The
    # stable sort (timsort) finds the jets already in order, so this is nearly linear.
    packed = jet_of.astype(np.uint64) << np.uint64(32)
    packed |= descending
    return np.argsort(packed, kind="stable")


def pad(
    jagged: Jagged,
    max_n: int,
    dtype: np.dtype,
    sort_by: str | None = None,
) -> np.ndarray:
    """Scatter a jagged collection into a (N, max_n) structured array with a ``valid`` field.

    Real constituents are packed first (descending in ``sort_by`` when given) and truncated
    at ``max_n``; padded slots are zero with ``valid`` false. No per-jet Python work: the
    kept constituents are gathered, in output order, into contiguous records, which one
    boolean-mask assignment places into the padded slots (row-major order is slot order).
    """
    dtype = np.dtype(dtype)
    counts = np.asarray(jagged.counts).astype(np.int64, copy=False)
    n_jets = len(counts)
    out = np.zeros((n_jets, max_n), dtype=dtype)
    total = int(counts.sum())
    if total == 0:
        return out
    select: np.ndarray | None = None  # flat indices of the kept constituents, in output order
    truncate = int(counts.max()) > max_n
    if sort_by is not None:
        jet_of = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
        select = segment_order(jet_of, jagged.fields[sort_by])
    if truncate:
        starts = exclusive_cumsum(counts)
        keep = np.arange(total, dtype=np.int64) - np.repeat(starts, counts) < max_n
        select = np.flatnonzero(keep) if select is None else select[keep]
    n_kept = total if select is None else len(select)
    gapless = sum(dtype[name].itemsize for name in dtype.names) == dtype.itemsize
    records = (np.empty if gapless else np.zeros)(n_kept, dtype=dtype)
    for name in dtype.names:
        if name != "valid":
            values = jagged.fields[name]
            records[name] = values if select is None else values[select]
    records["valid"] = True
    mask = np.arange(max_n) < counts[:, None]
    whole = np.dtype((np.void, dtype.itemsize))  # move records as opaque bytes
    out.view(whole)[mask] = records.view(whole)
    return out
