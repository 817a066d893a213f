"""``pad`` against a slow per-jet reference on random jagged data; ``prefetched``."""

import contextlib
import threading

import numpy as np
import pytest

from hepsnake.convert.convert import prefetched
from hepsnake.io.chunks import Jagged, JetChunk, pad

FIELDS = ("pt", "eta", "d0")


def reference(jagged: Jagged, max_n: int, dtype: np.dtype, sort_by: str | None) -> np.ndarray:
    """One jet at a time: stable descending sort (NaN last), truncate, zero-pad."""
    out = np.zeros((len(jagged.counts), max_n), dtype=dtype)
    start = 0
    for jet, count in enumerate(jagged.counts):
        rows = np.arange(start, start + count)
        start += count
        if sort_by is not None:
            key = jagged.fields[sort_by][rows]
            rows = rows[np.argsort(-key, kind="stable")]
        rows = rows[:max_n]
        for name in dtype.names:
            if name != "valid":
                out[name][jet, : len(rows)] = jagged.fields[name][rows]
        out["valid"][jet, : len(rows)] = True
    return out


def make_dtype(fields: tuple[str, ...] = FIELDS) -> np.dtype:
    return np.dtype([("valid", bool)] + [(f, np.float32) for f in fields])


def random_jagged(
    rng: np.random.Generator, n_jets: int, mean: float, key: str = "continuous"
) -> Jagged:
    counts = rng.poisson(mean, n_jets).astype(np.int64)
    counts[rng.random(n_jets) < 0.2] = 0  # plenty of jets without constituents
    total = int(counts.sum())
    fields = {f: rng.normal(0, 10, total).astype(np.float32) for f in FIELDS}
    if key == "ties":  # few distinct values: many ties within a jet, and both zeros
        fields["pt"] = rng.choice(np.array([-1.0, -0.0, 0.0, 1.0, 2.0], np.float32), total)
    elif key == "special":
        special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-45], np.float32)
        pick = rng.random(total) < 0.3
        fields["pt"][pick] = rng.choice(special, int(pick.sum()))
    elif key == "float64":  # exactly float32 values stored as float64
        fields["pt"] = fields["pt"].astype(np.float64)
    elif key == "float64-wide":  # not representable in float32: the lexsort fallback
        fields["pt"] = rng.normal(0, 1, total) * (1 + 1e-12 * rng.random(total))
    elif key == "int":
        fields["pt"] = rng.integers(-3, 4, total).astype(np.int32)
    return Jagged(counts, fields)


def check(jagged: Jagged, max_n: int, sort_by: str | None, dtype: np.dtype | None = None) -> None:
    dtype = make_dtype() if dtype is None else dtype
    got = pad(jagged, max_n, dtype, sort_by)
    want = reference(jagged, max_n, dtype, sort_by)
    assert got.dtype == dtype
    assert got.shape == (len(jagged.counts), max_n)
    # compare bytes: NaN == NaN and -0.0 != +0.0, so slot order must match exactly
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("sort_by", [None, "pt"])
@pytest.mark.parametrize("max_n", [1, 3, 8, 40])
def test_random(seed: int, sort_by: str | None, max_n: int) -> None:
    rng = np.random.default_rng(seed)
    check(random_jagged(rng, int(rng.integers(1, 300)), mean=6.0), max_n, sort_by)


@pytest.mark.parametrize("key", ["ties", "special", "float64", "float64-wide", "int"])
@pytest.mark.parametrize("max_n", [2, 5, 50])
def test_sort_keys(key: str, max_n: int) -> None:
    rng = np.random.default_rng(7)
    check(random_jagged(rng, 400, mean=5.0, key=key), max_n, "pt")


@pytest.mark.parametrize("sort_by", [None, "pt"])
def test_no_truncation_needed(sort_by: str | None) -> None:
    rng = np.random.default_rng(3)
    jagged = random_jagged(rng, 200, mean=3.0)
    check(jagged, int(jagged.counts.max()), sort_by)


@pytest.mark.parametrize("sort_by", [None, "pt"])
def test_empty_chunk(sort_by: str | None) -> None:
    jagged = Jagged(np.zeros(0, np.int64), {f: np.zeros(0, np.float32) for f in FIELDS})
    check(jagged, 4, sort_by)


@pytest.mark.parametrize("sort_by", [None, "pt"])
def test_all_jets_empty(sort_by: str | None) -> None:
    jagged = Jagged(np.zeros(5, np.int64), {f: np.zeros(0, np.float32) for f in FIELDS})
    out = pad(jagged, 3, make_dtype(), sort_by)
    assert not out["valid"].any()
    check(jagged, 3, sort_by)


def test_casts_and_extra_fields() -> None:
    """float64 and int32 inputs are cast into the dtype; fields not in the dtype are ignored."""
    rng = np.random.default_rng(11)
    jagged = random_jagged(rng, 100, mean=4.0)
    jagged.fields["eta"] = jagged.fields["eta"].astype(np.float64) * np.pi
    jagged.fields["extra"] = np.ones(int(jagged.counts.sum()))
    dtype = np.dtype([("pt", np.float32), ("valid", bool), ("eta", np.float32), ("n", np.int32)])
    jagged.fields["n"] = rng.integers(0, 100, int(jagged.counts.sum())).astype(np.int32)
    check(jagged, 4, "pt", dtype)
    check(jagged, 4, None, dtype)


def test_single_slot_keeps_the_maximum() -> None:
    counts = np.array([3, 0, 2])
    pt = np.array([1.0, 5.0, 2.0, 7.0, 9.0], np.float32)
    jagged = Jagged(counts, {"pt": pt, "eta": -pt, "d0": pt * 0})
    out = pad(jagged, 1, make_dtype(), "pt")
    assert out["pt"][:, 0].tolist() == [5.0, 0.0, 9.0]
    assert out["eta"][:, 0].tolist() == [-5.0, 0.0, -9.0]
    assert out["valid"][:, 0].tolist() == [True, False, True]


# ``prefetched``: the background reader of ``convert_file`` (same hot path, same owner).


def numbers(n: int, fail_at: int | None = None, log: list[str] | None = None):
    try:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"bad item {i}")
            yield i
    finally:
        if log is not None:
            log.append("closed")


@pytest.mark.parametrize("keep", ["random", "none", "all"])
def test_select_keeps_the_constituents_of_the_kept_jets(keep: str) -> None:
    """JetChunk.select against one jet at a time; keeping every jet keeps every value."""
    rng = np.random.default_rng(3)
    jagged = random_jagged(rng, 300, 4.0)
    jets = {"pt": rng.normal(0, 1, 300), "eventNumber": np.arange(300)}
    chunk = JetChunk(jets, {"tracks": jagged}, {"aux": rng.normal(0, 1, 300)})
    mask = {"random": rng.random(300) < 0.6, "none": np.zeros(300, bool)}.get(keep)
    mask = np.ones(300, bool) if mask is None else mask
    got = chunk.select(mask)
    starts = np.concatenate([[0], np.cumsum(jagged.counts)])
    kept = np.flatnonzero(mask)
    assert len(got) == len(kept)
    assert np.array_equal(got.jets["eventNumber"], kept)
    assert np.array_equal(got.aux["aux"], chunk.aux["aux"][mask])
    selected = got.collections["tracks"]
    assert np.array_equal(selected.counts, jagged.counts[mask])
    for name, values in jagged.fields.items():
        want = [values[starts[j] : starts[j + 1]] for j in kept]
        flat = np.concatenate(want) if want else values[:0]
        assert selected.fields[name].tobytes() == flat.tobytes()


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetched_order(depth: int) -> None:
    assert list(prefetched(numbers(50), depth)) == list(range(50))
    assert list(prefetched(numbers(0), depth)) == []


def test_prefetched_raises_after_earlier_items() -> None:
    got = []
    with pytest.raises(ValueError, match="bad item 4"):
        for item in prefetched(numbers(10, fail_at=4)):
            got.append(item)
    assert got == [0, 1, 2, 3]


@pytest.mark.parametrize("how", ["break", "raise"])
def test_prefetched_stops_and_closes_the_source(how: str) -> None:
    log: list[str] = []
    before = threading.active_count()
    items = prefetched(numbers(1000, log=log))
    with pytest.raises(RuntimeError) if how == "raise" else contextlib.nullcontext():
        for item in items:
            if item == 2:
                if how == "raise":
                    raise RuntimeError("consumer failed")
                break
    items.close()  # what a for loop's generator cleanup does
    assert log == ["closed"]
    assert threading.active_count() == before
