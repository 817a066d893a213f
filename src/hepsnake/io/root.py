"""Opening ROOT files safely and the generic ``flat`` reader (TTree or RNTuple, branch mapping)."""

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepsnake.config.contracts import FlatCollection, FlatReader, Link
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.chunks import Jagged, JetChunk, exclusive_cumsum
from hepsnake.io.expressions import evaluate, names
from hepsnake.io.remote import is_remote


def open_tree(path: str, tree: str) -> Any:
    """Open ``path`` and return its TTree or RNTuple ``tree``; bad input raises HepsnakeError."""
    try:
        handle = uproot.open(path, array_cache=None)
    except FileNotFoundError as exc:
        raise HepsnakeError(path, "file not found") from exc
    except Exception as exc:
        raise HepsnakeError(path, f"not a readable ROOT file ({first_line(exc)})") from exc
    try:
        obj = handle[tree]
    except KeyError as exc:
        available = ", ".join(sorted({k.split(";")[0] for k in handle.keys(recursive=False)}))
        raise HepsnakeError(path, f"no tree '{tree}' (has: {available or 'nothing'})") from exc
    except Exception as exc:
        raise HepsnakeError(path, f"cannot read tree '{tree}' ({first_line(exc)})") from exc
    if not hasattr(obj, "num_entries"):
        raise HepsnakeError(path, f"'{tree}' is a {type(obj).__name__}, not a TTree or RNTuple")
    if obj.num_entries == 0:
        raise HepsnakeError(path, f"tree '{tree}' is empty")
    return obj


def tree_keys(tree: Any) -> set[str]:
    """Every branch name of a TTree, recursively; every top-level field name of an RNTuple
    (what readers read: its subfields, ``_collection0.X`` or ``link.m_persKey``, are read
    through their field; listing them costs uproot 15-30 s on a NanoAOD or PHYSLITE file,
    the top-level names under one)."""
    return (
        set(tree.keys(recursive=True))
        if hasattr(tree, "branches")
        else set(tree.keys(recursive=False))
    )


def require_keys(path: str, tree: Any, names: list[str]) -> None:
    """Raise naming the first missing branch of ``names``."""
    keys = tree_keys(tree)
    missing = [n for n in names if n not in keys]
    if missing:
        raise HepsnakeError(path, f"missing branch '{missing[0]}' in '{tree.name}'")


def iterate(path: str, tree: Any, names: list[str], step: int) -> Iterator[ak.Array]:
    """``tree.iterate`` over ``names`` that turns read failures (truncation, a remote server
    gone) into HepsnakeError."""
    try:
        yield from tree.iterate(names, step_size=step, library="ak")
    except HepsnakeError:
        raise
    except Exception as exc:
        remote = is_remote(path) and isinstance(exc, OSError)
        why = "remote read failed" if remote else "truncated or corrupt file"
        raise HepsnakeError(path, f"cannot read '{tree.name}': {why} ({first_line(exc)})") from exc


def field(arrays: ak.Array, name: str) -> ak.Array:
    """Field ``name`` of a block of entries (straight from its record layout: ``arrays[name]``
    costs ~0.1 ms, per variable and chunk)."""
    layout = arrays.layout
    if isinstance(layout, ak.contents.RecordArray):
        return ak.Array(layout.content(name))
    return arrays[name]


def lists(values: ak.Array) -> tuple[np.ndarray, ak.Array]:
    """Per-entry lengths (int64) and the content one level down of a list array (``ak.num``
    and ``ak.flatten`` along axis 1; read from the offsets of a plain ListOffsetArray, where
    those two calls cost ~0.7 ms per variable and chunk)."""
    layout = values.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and not layout.parameters:  # no strings
        offsets = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
        content = layout.content[int(offsets[0]) : int(offsets[-1])]
        return np.diff(offsets), ak.Array(content)
    return ak.to_numpy(ak.num(values, axis=1)).astype(np.int64), ak.flatten(values, axis=1)


def flat_values(array: ak.Array) -> np.ndarray:
    """The contiguous numpy content of a (possibly jagged) numeric awkward array."""
    return np.asarray(ak.to_numpy(ak.flatten(array, axis=None)))


class TreeSource(ABC):
    """What the converter reads from: ``path``, its open ``tree`` and the ``branches`` to read;
    subclasses turn a block of entries into a :class:`JetChunk`."""

    path: str
    tree: Any
    branches: list[str]
    cut_aux: list[str]  # names the cuts read that are raw branches, not jet variables

    @property
    def num_entries(self) -> int:
        """Entries in the tree (jets or events), for progress bars."""
        return int(self.tree.num_entries)

    def chunks(self, step: int) -> Iterator[tuple[int, JetChunk]]:
        """Yield (entries read, chunk of their jets) in blocks of ``step`` entries."""
        offset = 0
        for arrays in iterate(self.path, self.tree, self.branches, step):
            n_entries = len(arrays)
            yield n_entries, self._to_chunk(arrays, offset)
            offset += n_entries

    @abstractmethod
    def _to_chunk(self, arrays: ak.Array, offset: int) -> JetChunk:
        """The jets of a block of entries; ``offset`` is the index of its first entry."""


ENTRY_INDEX = "entry index"


def flat_variables(spec: FlatReader) -> dict[str, list[str]]:
    """The variables a ``flat`` reader ``spec`` writes, per dataset: its jet mapping (with
    ``eventNumber``, the entry index where unmapped) and each collection's."""
    out = {"jets": list(dict.fromkeys([*spec.jets, "eventNumber"]))}
    for name, coll in spec.collections.items():
        out[name] = list(coll.variables)
    return out


def kind_of(values: Any) -> str:
    """A short description of an array's layout, e.g. ``var * float32``."""
    return str(ak.type(values)).split(" * ", 1)[-1] if isinstance(values, ak.Array) else "scalar"


@dataclass
class FlatSource(TreeSource):
    """A TTree/RNTuple whose branches (or expressions over them) give jet variables and
    constituent collections.

    ``entry: jet`` means one tree entry per jet (jagged constituent branches); ``entry: event``
    means jet branches are jagged per event (constituents ``var * var``, or per-event
    collections linked to jets by index branches) and per-event scalars are broadcast to
    every jet of the event. Without an ``eventNumber`` mapping the event number is
    ``first_event`` plus the entry index. ``cut_names`` are the names the cuts read: those
    that are branches but not jet variables are read into :attr:`JetChunk.aux`.
    """

    path: str
    spec: FlatReader
    first_event: int = 0
    cut_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.tree = open_tree(self.path, self.spec.tree)
        self.keys = tree_keys(self.tree)
        self.per_event = self.spec.entry == "event"
        self.energy_unit: str = self.spec.unit
        self.jet_map: dict[str, str] = dict(self.spec.jets)
        self.coll_specs = dict(self.spec.collections)
        needed = [b for var, e in self.jet_map.items() for b in self.reads(e, f"jets.{var}")]
        for name, coll in self.coll_specs.items():
            for var, expr in coll.variables.items():
                needed += self.reads(expr, f"collections.{name}.{var}")
            if coll.link is not None:
                if not self.per_event:
                    raise HepsnakeError(
                        f"{self.path}: collections.{name}.link", "needs entry: event"
                    )
                needed += coll.link.branches
        self.cut_aux = [n for n in self.cut_names if n not in self.jet_map and n in self.keys]
        self.branches = sorted({*needed, *self.cut_aux})
        require_keys(self.path, self.tree, self.branches)
        self.event_number_source = self.jet_map.get("eventNumber", ENTRY_INDEX)

    def reads(self, expr: str, key: str) -> list[str]:
        """The branches expression ``expr`` (config key ``key``) reads: itself if a branch."""
        if expr in self.keys:
            return [expr]
        return names(expr, f"{self.path}: {key}")

    def value(self, arrays: ak.Array, expr: str, key: str) -> Any:
        """``expr`` evaluated over a block of entries (a branch is read as it is)."""
        if expr in self.keys:
            return field(arrays, expr)
        where = f"{self.path}: {key}"
        return evaluate(expr, {n: arrays[n] for n in names(expr, where)}, where)

    def _to_chunk(self, arrays: ak.Array, offset: int) -> JetChunk:
        first = self.first_event + offset
        n_entries = len(arrays)
        raw = {var: self.value(arrays, e, f"jets.{var}") for var, e in self.jet_map.items()}
        per_event = self._jets_per_event(raw, offset) if self.per_event else None
        columns = {
            var: self._jet_column(f"jets.{var}", e, raw[var], n_entries, per_event)
            for var, e in self.jet_map.items()
        }
        aux = {
            n: self._jet_column(f"cuts: {n}", n, arrays[n], n_entries, per_event)
            for n in self.cut_aux
        }
        event_index = np.arange(first, first + n_entries)
        if per_event is not None:
            event_index = np.repeat(event_index, per_event)
        columns.setdefault("eventNumber", event_index)
        collections = {
            name: self._collection(arrays, name, coll, per_event, offset)
            for name, coll in self.coll_specs.items()
        }
        return JetChunk(columns, collections, aux)

    def _jets_per_event(self, raw: dict[str, Any], offset: int) -> np.ndarray:
        """Jets per event, from the jagged jet variables (which must agree)."""
        counts: np.ndarray | None = None
        source = ""
        for var, values in raw.items():
            if not isinstance(values, ak.Array) or values.ndim != 2:
                continue
            these = ak.to_numpy(ak.num(values, axis=1)).astype(np.int64)
            if counts is None:
                counts, source = these, var
            elif not np.array_equal(these, counts):
                entry = offset + int(np.argmax(these != counts))
                raise HepsnakeError(
                    f"{self.path}: jets.{var}",
                    f"'{self.jet_map[var]}' has a different number of values per event than "
                    f"'{self.jet_map[source]}' (entry {entry})",
                )
        if counts is None:
            raise HepsnakeError(self.path, "entry: event needs at least one jagged jet branch")
        return counts

    def _jet_column(
        self, key: str, expr: str, values: Any, n_entries: int, per_event: np.ndarray | None
    ) -> np.ndarray:
        """One value per jet from ``values`` (of ``expr``, config key ``key``): per entry
        (``entry: jet``), or jagged per event / a per-event scalar (``entry: event``); any
        other shape is an error naming the file, the key and the branch."""
        where = f"{self.path}: {key}"
        if not isinstance(values, ak.Array):  # a constant expression
            n = n_entries if per_event is None else int(per_event.sum())
            return np.full(n, values, dtype=np.float64)
        if values.ndim == 1:
            column = numeric(values, where, expr)
            return column if per_event is None else np.repeat(column, per_event)
        if per_event is None:
            raise HepsnakeError(
                where,
                f"'{expr}' is jagged ({kind_of(values)}) where one value per jet is expected "
                "(entry: jet); per-event jet branches need entry: event",
            )
        if values.ndim != 2:
            raise HepsnakeError(
                where, f"'{expr}' is {kind_of(values)}: a jet variable needs one value per jet"
            )
        if not np.array_equal(ak.to_numpy(ak.num(values, axis=1)), per_event):
            raise HepsnakeError(where, f"'{expr}' does not have one value per jet")
        return numeric(ak.flatten(values, axis=1), where, expr)

    def _collection(
        self,
        arrays: ak.Array,
        name: str,
        coll: FlatCollection,
        per_event: np.ndarray | None,
        offset: int,
    ) -> Jagged:
        """One constituent collection: jagged per jet, or a per-event collection by link."""
        link = coll.link
        values = {
            var: self.value(arrays, expr, f"collections.{name}.{var}")
            for var, expr in coll.variables.items()
        }
        depth = 2 if link is not None or not self.per_event else 3
        counts: np.ndarray | None = None
        flat: dict[str, np.ndarray] = {}
        for var, v in values.items():
            where = f"{self.path}: collections.{name}.{var}"
            expr = coll.variables[var]
            if not isinstance(v, ak.Array) or v.ndim != depth:
                layout = "per event" if link is not None else "per jet"
                raise HepsnakeError(
                    where, f"'{expr}' is {kind_of(v)}: a constituent variable needs a list {layout}"
                )
            if depth == 3:
                v = lists(v)[1]
            these, content = lists(v)
            if counts is None:
                counts = these
            elif not np.array_equal(these, counts):
                raise HepsnakeError(where, f"'{expr}' has a different length than the others")
            flat[var] = numeric(content, where, expr)
        assert counts is not None
        if link is None:
            return Jagged(counts, flat)
        assert per_event is not None
        return linked(
            arrays, link, counts, per_event, flat, f"{self.path}: collections.{name}", offset
        )


def numeric(values: ak.Array, where: str, expr: str) -> np.ndarray:
    """The numpy content of a flat numeric awkward array; anything else names ``expr``."""
    layout = values.layout
    try:
        if isinstance(layout, ak.contents.NumpyArray) and not layout.parameters:  # ~0.1 ms saved
            out = np.asarray(layout.data)
        else:
            out = np.asarray(ak.to_numpy(values))
    except Exception as exc:
        raise HepsnakeError(where, f"'{expr}' is not numeric ({first_line(exc)})") from exc
    if out.dtype.kind not in "biuf":
        raise HepsnakeError(where, f"'{expr}' is not numeric ({out.dtype})")
    return out


def read_index(
    arrays: ak.Array,
    branch: str,
    per_event: tuple[np.ndarray, str],
    targets: tuple[np.ndarray, str],
    where: str,
    offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The flat int64 index branch ``branch`` (``per_event``: values per event and what each
    belongs to) and the event of each value; an index past its event's ``targets`` (count per
    event, their name) is an error naming the branch and the entry."""
    (counts, owner), (limits, target) = per_event, targets
    idx = arrays[branch]
    if idx.ndim != 2 or not np.array_equal(ak.num(idx, axis=1), counts):
        raise HepsnakeError(where, f"index branch '{branch}' is not one value per {owner}")
    idx = numeric(ak.flatten(idx, axis=1), where, branch).astype(np.int64)
    event_of = np.repeat(np.arange(len(counts)), counts)
    bad = idx >= limits[event_of]
    if bad.any():
        at = int(np.argmax(bad))
        raise HepsnakeError(
            where,
            f"'{branch}' index {idx[at]} is out of range ({limits[event_of[at]]} {target})"
            f" in entry {offset + int(event_of[at])}",
        )
    return idx, event_of


def linked(
    arrays: ak.Array,
    link: Link,
    coll_counts: np.ndarray,
    jets_per_event: np.ndarray,
    fields: dict[str, np.ndarray],
    where: str,
    offset: int,
) -> Jagged:
    """Attach a per-event collection (``coll_counts`` items per event, flat ``fields``) to
    jets by index branches: ``jet_side`` (per jet, the index of a constituent in its event,
    -1 = none; several branches give several slots, in branch order) or
    ``constituent_side`` (per constituent, the index of its jet in the event, -1 = none).
    An index past the end of its event's collection is an error naming the branch."""
    n_jets = int(jets_per_event.sum())
    jet_start = exclusive_cumsum(jets_per_event)
    coll_start = exclusive_cumsum(coll_counts)
    if link.jet_side is not None:
        columns = []
        for branch in link.branches:
            idx, event_of_jet = read_index(
                arrays, branch, (jets_per_event, "jet"), (coll_counts, "items"), where, offset
            )
            columns.append(np.where(idx >= 0, idx + coll_start[event_of_jet], -1))
        slots = np.stack(columns, axis=1)  # (jets, branches), row-major = output order
        valid = slots >= 0
        counts = valid.sum(axis=1).astype(np.int64)
        take = slots[valid]
    else:
        branch = str(link.constituent_side)
        jidx, event_of_item = read_index(
            arrays, branch, (coll_counts, "constituent"), (jets_per_event, "jets"), where, offset
        )
        keep = np.flatnonzero(jidx >= 0)
        jet_of_item = jidx[keep] + jet_start[event_of_item[keep]]
        order = np.argsort(jet_of_item, kind="stable")
        take = keep[order]
        counts = np.bincount(jet_of_item, minlength=n_jets).astype(np.int64)
    return Jagged(counts, {k: v[take] for k, v in fields.items()})
