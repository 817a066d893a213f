"""Opening ROOT files safely and the generic ``flat`` reader (TTree or RNTuple, branch mapping)."""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepsnake.errors import HepsnakeError
from hepsnake.io.chunks import Jagged, JetChunk


def first_line(exc: BaseException) -> str:
    """The first line of an exception message, prefixed by its type, for one-line errors."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


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
    """Every branch (TTree) or field (RNTuple) name of ``tree``, recursively."""
    return set(tree.keys(recursive=True)) if hasattr(tree, "branches") else set(tree.keys())


def require_keys(path: str, tree: Any, names: list[str]) -> None:
    """Raise naming the first missing branch of ``names``."""
    keys = tree_keys(tree)
    missing = [n for n in names if n not in keys]
    if missing:
        raise HepsnakeError(path, f"missing branch '{missing[0]}' in '{tree.name}'")


def iterate(path: str, tree: Any, names: list[str], step: int) -> Iterator[ak.Array]:
    """``tree.iterate`` over ``names`` that turns read failures (truncation) into HepsnakeError."""
    try:
        yield from tree.iterate(names, step_size=step, library="ak")
    except HepsnakeError:
        raise
    except Exception as exc:
        raise HepsnakeError(
            path, f"cannot read '{tree.name}': truncated or corrupt file ({first_line(exc)})"
        ) from exc


def flat_values(array: ak.Array) -> np.ndarray:
    """The contiguous numpy content of a (possibly jagged) numeric awkward array."""
    return np.asarray(ak.to_numpy(ak.flatten(array, axis=None)))


class TreeSource(ABC):
    """What the converter reads from: ``path``, its open ``tree`` and the ``branches`` to read;
    subclasses turn a block of entries into a :class:`JetChunk`."""

    path: str
    tree: Any
    branches: list[str]

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


@dataclass
class FlatSource(TreeSource):
    """A TTree/RNTuple whose branches map onto jet variables and jagged constituent collections.

    ``entry: jet`` means one tree entry per jet (jagged constituent branches); ``entry: event``
    means jet branches are jagged per event (constituents ``var * var``) and per-event scalars
    are broadcast to every jet of the event. Without an ``eventNumber`` mapping the event
    number is ``first_event`` plus the entry index.
    """

    path: str
    spec: dict[str, Any]
    first_event: int = 0

    def __post_init__(self) -> None:
        self.tree = open_tree(self.path, self.spec["tree"])
        self.jet_map: dict[str, str] = dict(self.spec["jets"])
        self.coll_maps: dict[str, dict[str, str]] = {
            name: dict(mapping) for name, mapping in self.spec.get("collections", {}).items()
        }
        self.branches = sorted(
            {*self.jet_map.values(), *(b for m in self.coll_maps.values() for b in m.values())}
        )
        require_keys(self.path, self.tree, self.branches)
        self.per_event = self.spec.get("entry", "jet") == "event"

    def _to_chunk(self, arrays: ak.Array, offset: int) -> JetChunk:
        first = self.first_event + offset
        event_index = np.arange(first, first + len(arrays))
        jets_per_event = None
        if self.per_event:
            jets_per_event = self._jets_per_event(arrays)
            event_index = np.repeat(event_index, jets_per_event)
        jets: dict[str, np.ndarray] = {}
        for var, branch in self.jet_map.items():
            values = arrays[branch]
            if jets_per_event is not None and values.ndim == 1:
                jets[var] = np.repeat(ak.to_numpy(values), jets_per_event)
            else:
                jets[var] = flat_values(values)
        jets.setdefault("eventNumber", event_index)
        collections = {}
        for name, mapping in self.coll_maps.items():
            fields = {}
            counts = None
            for var, branch in mapping.items():
                values = arrays[branch]
                if self.per_event:
                    values = ak.flatten(values, axis=1)
                if counts is None:
                    counts = ak.to_numpy(ak.num(values, axis=1)).astype(np.int64)
                fields[var] = flat_values(values)
            collections[name] = Jagged(counts, fields)
        return JetChunk(jets, collections)

    def _jets_per_event(self, arrays: ak.Array) -> np.ndarray:
        for branch in self.jet_map.values():
            if arrays[branch].ndim == 2:
                return ak.to_numpy(ak.num(arrays[branch], axis=1))
        raise HepsnakeError(self.path, "entry: event needs at least one jagged jet branch")
