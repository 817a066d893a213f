"""The readers' common face: open an input file with the reader its sample names."""

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from hepsnake.config.contracts import FlatReader, Reader
from hepsnake.errors import HepsnakeError
from hepsnake.io.chunks import JetChunk
from hepsnake.io.physlite import PhysliteSource
from hepsnake.io.remote import is_remote
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
    reader: Reader,
    tree: str | None,
    first_event: int = 0,
    cut_names: Sequence[str] = (),
) -> Source:
    """Open ``path`` with ``reader`` (``tree`` overrides its tree).

    ``first_event``: the event number of the first entry, for files whose events are
    numbered by entry (flat readers without an ``eventNumber`` mapping, PHYSLITE files
    without any event number). ``cut_names``: names the cuts read (raw branches among them
    are read for the cuts).
    """
    if not is_remote(path) and not os.path.exists(path):
        raise HepsnakeError(path, "file not found")
    spec = dataclasses.replace(reader, tree=tree) if tree else reader
    if isinstance(spec, FlatReader):
        return FlatSource(path, spec, first_event, cut_names)
    return PhysliteSource(path, spec, first_event, cut_names)


def reader_variables(reader: Reader) -> dict[str, list[str]]:
    """The variables ``reader`` writes, per dataset."""
    from hepsnake.io.physlite import physlite_variables
    from hepsnake.io.root import flat_variables

    if isinstance(reader, FlatReader):
        return flat_variables(reader)
    return physlite_variables(reader)
