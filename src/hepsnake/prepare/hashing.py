"""Stable per-event uniform numbers from (sample, eventNumber, seed): the split assignment."""

import zlib

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised over uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def event_uniform(sample: str, event_number: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) number per jet, shared by an event's jets, independent of other samples."""
    key = np.uint64((zlib.crc32(sample.encode()) << 32) ^ (seed & 0xFFFFFFFF))
    mixed = splitmix64(splitmix64(event_number.astype(np.uint64)) ^ key)
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def assign_splits(u: np.ndarray, fractions: list[float]) -> np.ndarray:
    """Index into ``fractions`` for each uniform number (cumulative thresholds)."""
    edges = np.cumsum(fractions)[:-1]
    return np.searchsorted(edges, u, side="right")
