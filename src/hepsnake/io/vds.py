"""HDF5 virtual datasets: one file whose datasets are the rows of several files, one after the
other, as Salt and atlas-ftag-tools combine files. Readers (h5py, ``H5Reader``) see ordinary
datasets; the rows stay in the source files, found relative to the virtual file's folder."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py

from hepsnake.errors import HepsnakeError


def check_layouts(sources: Sequence[Path], layouts: Sequence[dict[str, dict[str, Any]]]) -> None:
    """Raise naming the source whose datasets (names, slot shapes, record types) differ from
    the first's; ``layouts`` per source: ``{name: {"shape": [...], "dtype": str}}``."""
    first = layouts[0]
    for source, layout in zip(sources[1:], layouts[1:], strict=True):
        if sorted(layout) != sorted(first):
            raise HepsnakeError(
                str(source), f"datasets {sorted(layout)}, but {sources[0]} has {sorted(first)}"
            )
        for name, spec in layout.items():
            slots, dtype = first[name]["shape"][1:], first[name]["dtype"]
            if spec["shape"][1:] != slots or spec["dtype"] != dtype:
                raise HepsnakeError(
                    str(source),
                    f"'{name}' has {spec['shape'][1:]} slots of {spec['dtype']}, {sources[0]}"
                    f" {slots} of {dtype}",
                )


def write_virtual(
    h5: h5py.File,
    sources: Sequence[Path],
    layouts: Sequence[dict[str, dict[str, Any]]],
    folder: Path,
) -> None:
    """In the open ``h5`` (to live in ``folder``), one virtual dataset per dataset of the
    ``sources`` (their ``layouts``, checked by :func:`check_layouts`): the sources' rows in
    order, each source named relative to ``folder``. Dataset attributes come from the first
    source."""
    check_layouts(sources, layouts)
    with h5py.File(sources[0], "r") as first:
        for name, ds in first.items():
            rows = [layout[name]["shape"][0] for layout in layouts]
            virtual = h5py.VirtualLayout(shape=(sum(rows), *ds.shape[1:]), dtype=ds.dtype)
            start = 0
            for source, n in zip(sources, rows, strict=True):
                shape = (n, *ds.shape[1:])
                relative = os.path.relpath(source, folder)
                virtual[start : start + n] = h5py.VirtualSource(relative, name, shape=shape)
                start += n
            virtual.dcpl.set_obj_track_times(False)  # no creation time: same parts, same bytes
            created = h5.create_virtual_dataset(name, virtual)
            for key, value in ds.attrs.items():
                created.attrs[key] = value


def missing_sources(h5: h5py.File) -> list[str]:
    """The source files of the virtual datasets of ``h5`` that do not exist (their rows
    would read as zeros)."""
    folder = Path(h5.filename).parent
    sources = dict.fromkeys(
        folder / source.file_name
        for ds in h5.values()
        if isinstance(ds, h5py.Dataset) and ds.is_virtual
        for source in ds.virtual_sources()
    )
    return [str(path) for path in sources if not path.is_file()]
