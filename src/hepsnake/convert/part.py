"""One convert job: a part of a sample (:mod:`hepsnake.convert.parts`) into its HDF5 file and
its status JSON.

A part never fails for its input: a file that cannot be converted (and is not skipped with
``convert.skip_bad_files``) makes the part ``failed``: an HDF5 file without datasets and a
status naming the cause, which the gather judges against ``convert.max_failed_fraction``.
The job itself fails only where its output cannot be written (disk full) or on a bug.
"""

import logging
from pathlib import Path
from typing import Any

import h5py

from hepsnake.config import sample_by_name
from hepsnake.convert.convert import progress_bar, set_file_attrs, write_files
from hepsnake.convert.parts import sample_part
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path, json_text
from hepsnake.io.remote import redact_url

log = logging.getLogger("hepsnake")
OK, FAILED = "ok", "failed"


def dataset_layouts(h5: h5py.File) -> dict[str, dict[str, Any]]:
    """Per dataset, its shape and record type (the gather checks every part agrees)."""
    return {
        name: {"shape": list(ds.shape), "dtype": str(ds.dtype.descr)} for name, ds in h5.items()
    }


def convert_part(
    config: dict[str, Any],
    sample_name: str,
    index: int,
    output: str | Path,
    status: str | Path,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Convert part ``index`` of ``sample_name`` into ``output``; write its status (returned)
    to ``status``: ``state`` ok or failed (with ``error``), its ``inputs``, the ``files``
    converted, the ``skipped`` ones, ``jets``, ``truncated_constituents`` and the
    ``datasets`` written. Both files appear together, or neither."""
    sample = sample_by_name(config, sample_name)
    part = sample_part(config, sample_name, index)
    record: dict[str, Any] = {
        "sample": sample_name,
        "part": index,
        "first_file": part.first_file,
        "inputs": [redact_url(f) for f in part.files],
    }
    with (
        atomic_path(output) as tmp,
        atomic_path(status) as tmp_status,
        progress_bar(show_progress) as bar,
    ):
        try:
            with h5py.File(tmp, "w") as h5:
                written = write_files(h5, config, sample, part.files, part.first_file, bar)
                set_file_attrs(h5, config, sample, written["files"], written["skipped"])
                record |= {"state": OK, **written, "datasets": dataset_layouts(h5)}
        except HepsnakeError as exc:  # an input's fault (a failed write is an OSError)
            log.warning("part %d of sample %s failed: %s", index, sample_name, exc)
            with h5py.File(tmp, "w") as h5:
                set_file_attrs(h5, config, sample, [], [])
            record |= {"state": FAILED, "error": str(exc), "files": [], "skipped": []}
            record |= {"jets": 0, "truncated_constituents": 0, "datasets": {}}
        tmp_status.write_text(json_text(record))
    return record
