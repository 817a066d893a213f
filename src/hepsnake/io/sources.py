"""The readers' common face: open an input file with the reader its sample names."""

import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from hepsnake.config import is_remote
from hepsnake.errors import HepsnakeError
from hepsnake.io.chunks import JetChunk
from hepsnake.io.physlite import PhysliteSource
from hepsnake.io.root import FlatSource


class Source(Protocol):
    """What a reader offers the converter."""

    num_entries: int
    energy_unit: str
    event_number_source: str
    cut_aux: list[str]

    def chunks(self, step: int) -> Iterator[tuple[int, JetChunk]]: ...


def open_source(
    path: str,
    reader: dict[str, Any],
    tree: str | None,
    first_event: int = 0,
    cut_names: Sequence[str] = (),
) -> Source:
    """Open ``path`` with the reader type named in ``reader`` (``tree`` overrides its tree).

    ``first_event``: the event number of the first entry, for files whose events are
    numbered by entry (flat readers without an ``eventNumber`` mapping, PHYSLITE files
    without any event number). ``cut_names``: names the cuts read (raw branches among them
    are read for the cuts).
    """
    if not is_remote(path) and not os.path.exists(path):
        raise HepsnakeError(path, "file not found")
    spec = dict(reader)
    kind = spec.pop("type")
    if tree:
        spec["tree"] = tree
    if kind == "flat":
        return FlatSource(path, spec, first_event, cut_names)
    return PhysliteSource(path, spec, first_event, cut_names)
