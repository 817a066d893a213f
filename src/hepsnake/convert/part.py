"""One convert job: a part of a sample (:mod:`hepsnake.convert.parts`) into its HDF5 file, whose
``part_status`` attribute (JSON) holds the part's status: one output per job, which keeps
Snakemake's per-job work (and so ``snakemake -n`` of thousands of parts) small.

A part never fails for its input: a file that cannot be converted (and is not skipped with
``convert.skip_bad_files``) makes the part ``failed``: an HDF5 file without datasets whose
status names the cause, which the gather judges against ``convert.max_failed_fraction``.
The job itself fails only where its output cannot be written (disk full) or on a bug.
"""

import logging
from pathlib import Path
from typing import Any

import h5py

from hepsnake.config.contracts import ConvertContract
from hepsnake.convert.convert import (
    jet_weight_sums,
    progress_bar,
    set_file_attrs,
    write_files,
)
from hepsnake.convert.parts import sample_part
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path
from hepsnake.io.h5 import set_attrs
from hepsnake.io.remote import redact_url
from hepsnake.io.xrootd import configure as configure_xrootd
from hepsnake.negative_weights import weight_sums

log = logging.getLogger("hepsnake")
OK, FAILED = "ok", "failed"
STATUS = "part_status"  # the attribute of a part file that holds its status


def dataset_layouts(h5: h5py.File) -> dict[str, dict[str, Any]]:
    """Per dataset, its shape and record type (the gather checks every part agrees)."""
    return {
        name: {"shape": list(ds.shape), "dtype": str(ds.dtype.descr)} for name, ds in h5.items()
    }


def convert_part(
    contract: ConvertContract, index: int, output: str | Path, show_progress: bool = True
) -> dict[str, Any]:
    """Convert part ``index`` of the contract's sample into ``output``, with its status
    (returned) as the file's :data:`STATUS` attribute: ``state`` ok or failed (with
    ``error``), its ``inputs``, the ``files`` converted, the ``skipped`` ones, ``jets``,
    ``truncated_constituents``, the ``datasets`` written and the ``weight_sums`` of its jets
    (the gather adds them up). The file appears whole, or not at all."""
    name = contract.sample.name
    part = sample_part(contract, index)
    configure_xrootd(contract.convert.xrootd)
    record: dict[str, Any] = {
        "sample": name,
        "part": index,
        "first_file": part.first_file,
        "inputs": [redact_url(f) for f in part.files],
    }
    with atomic_path(output) as tmp, progress_bar(show_progress) as bar:
        try:
            with h5py.File(tmp, "w") as h5:
                written = write_files(h5, contract, part.files, part.first_file, bar)
                set_file_attrs(h5, contract, written["files"], written["skipped"])
                record |= {"state": OK, **written, "datasets": dataset_layouts(h5)}
                record["weight_sums"] = jet_weight_sums(h5)
                set_attrs(h5, {STATUS: record})
        except HepsnakeError as exc:  # an input's fault (a failed write is an OSError)
            log.warning("part %d of sample %s failed: %s", index, name, exc)
            record |= {"state": FAILED, "error": str(exc), "files": [], "skipped": []}
            record |= {"jets": 0, "truncated_constituents": 0, "datasets": {}}
            record["weight_sums"] = weight_sums([])
            with h5py.File(tmp, "w") as h5:
                set_file_attrs(h5, contract, [], [])
                set_attrs(h5, {STATUS: record})
    return record
