"""The gather of a sample's parts into ``results/h5/{sample}.h5``: an HDF5 virtual dataset over
the part files (no rows copied) and the sample's summary.

Failed parts (:mod:`hepsnake.convert.part`) are judged here: more than
``convert.max_failed_fraction`` of the parts is an error naming the first; fewer leave their
files out, listed in the summary (``failed_parts``, their files under ``skipped``, a
``failed_parts`` warning). Either way the gather writes each failed part's retry mark
(:func:`hepsnake.paths.part_retry`), an input of that part newer than its outputs: Snakemake's
DAG says what is true, those parts are out of date, and the next run converts them again (and
only them), then gathers again. (Removing their outputs would not do: Snakemake treats a
missing intermediate file under an up-to-date output as a removed temporary.)
"""

import logging
from pathlib import Path
from typing import Any

import h5py

from hepsnake import paths
from hepsnake.config.contracts import ConvertContract
from hepsnake.convert.convert import sample_totals, set_file_attrs, weight_totals
from hepsnake.convert.part import FAILED, OK, STATUS
from hepsnake.convert.parts import Part, sample_parts
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path, json_text
from hepsnake.io.files import mapping, open_h5
from hepsnake.io.h5 import read_json_attr
from hepsnake.io.remote import redact_url
from hepsnake.io.vds import write_virtual
from hepsnake.negative_weights import added

log = logging.getLogger("hepsnake")


def read_status(sample: str, part: Part) -> dict[str, Any]:
    """The status of ``part`` (its file's :data:`~hepsnake.convert.part.STATUS`), which must
    be of its current files."""
    path = Path(paths.part_file(sample, part.index))
    if not path.is_file():
        raise HepsnakeError(
            str(path),
            f"part {part.index} of sample '{sample}' is not converted"
            f" (`hepsnake convert --sample {sample} --part {part.index}`)",
        )
    with open_h5(path, "part file") as h5:
        status = read_json_attr(h5, STATUS, "part file")
        status = mapping(status, path, "part file", ["inputs", "state", "part"])
    if status["inputs"] != [redact_url(f) for f in part.files]:
        raise HepsnakeError(str(path), "is of other files than the part now has: convert it again")
    return status


def failed_part(status: dict[str, Any]) -> dict[str, Any]:
    """A failed part as the summary lists it: its index, files and error."""
    return {"part": status["part"], "files": status["inputs"], "error": status["error"]}


def check_failures(sample: str, failed: list[dict[str, Any]], n_parts: int, limit: float) -> None:
    """Raise naming the first failed part if more than ``limit`` of ``n_parts`` failed."""
    if len(failed) > limit * n_parts:
        first = failed[0]
        raise HepsnakeError(
            f"sample '{sample}'",
            f"{len(failed)} of {n_parts} parts failed (convert.max_failed_fraction {limit:g});"
            f" part {first['part']}: {first['error']}",
        )


def mark_for_retry(sample: str, failed: list[dict[str, Any]]) -> None:
    """Write each failed part's retry mark (its error): an input of the part newer than its
    outputs, so Snakemake converts that part again in the next run."""
    for status in failed:
        Path(paths.part_retry(sample, status["part"])).write_text(status["error"] + "\n")


def failure_warning(failed: list[dict[str, Any]], n_parts: int) -> dict[str, str]:
    """The report's warning about the parts left out."""
    files = sum(len(s["inputs"]) for s in failed)
    return {
        "code": "failed_parts",
        "message": f"{len(failed)} of {n_parts} parts failed: their {files} files are left out",
        "advice": "the next run converts them again; fix or remove the files named in"
        " failed_parts (or skip bad files with convert.skip_bad_files)",
    }


def gather(contract: ConvertContract, output: str | Path, summary: str | Path) -> dict[str, Any]:
    """Gather the parts of the contract's sample (:func:`hepsnake.paths.part_file`) into
    ``output``, a virtual dataset over the part files
    with jets, and write ``summary`` (returned): the convert summary of the whole sample plus
    ``parts`` and ``failed_parts``. Both files appear together, or neither."""
    name = contract.sample.name
    parts = sample_parts(contract)
    statuses = [read_status(name, part) for part in parts]
    failed = [s for s in statuses if s["state"] == FAILED]
    try:
        check_failures(name, failed, len(parts), contract.convert.max_failed_fraction)
        ok = [s for s in statuses if s["state"] == OK]
        left_out = [
            {"path": path, "reason": f"{path}: left out, part {s['part']} failed ({s['error']})"}
            for s in failed
            for path in s["inputs"]
        ]
        written = {
            "files": [f for s in ok for f in s["files"]],
            "skipped": [f for s in ok for f in s["skipped"]] + left_out,
            "jets": sum(s["jets"] for s in ok),
            "truncated_constituents": sum(s["truncated_constituents"] for s in ok),
        }
        report = {"sample": name, **written, **sample_totals(contract, written)}
        report |= weight_totals(name, added(s["weight_sums"] for s in ok))
        report |= {"parts": len(parts), "failed_parts": [failed_part(s) for s in failed]}
        report["warnings"] += [failure_warning(failed, len(parts))] if failed else []
        filled = [s for s in ok if s["jets"]]
        sources = [Path(paths.part_file(name, s["part"])) for s in filled]
        with atomic_path(output) as tmp, atomic_path(summary) as tmp_summary:
            with h5py.File(tmp, "w") as h5:
                write_virtual(h5, sources, [s["datasets"] for s in filled], Path(output).parent)
                set_file_attrs(h5, contract, written["files"], written["skipped"])
            tmp_summary.write_text(json_text(report))
    finally:
        mark_for_retry(name, failed)
    for s in failed:
        log.warning("part %d failed, left out (the next run retries it): %s", s["part"], s["error"])
    return report
