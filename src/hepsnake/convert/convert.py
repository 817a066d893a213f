"""The ``convert`` stage: stream a sample's ROOT files into one FTAG-layout HDF5 file."""

import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np
import xxhash
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hepsnake import __version__
from hepsnake.config.contracts import ConvertContract
from hepsnake.config.typed import to_data
from hepsnake.convert.cuts import apply_cuts, cut_names, mev_warnings
from hepsnake.convert.preflight import check_cut_names
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.atomic import atomic_path, json_text, write_errno
from hepsnake.io.chunks import JetChunk, pad
from hepsnake.io.h5 import TableWriter, set_attrs
from hepsnake.io.listing import expand_urls
from hepsnake.io.remote import is_remote, redact_text, redact_url
from hepsnake.io.sources import open_source
from hepsnake.io.xrootd import configure as configure_xrootd
from hepsnake.names import LABEL
from hepsnake.negative_weights import figures_of, warning, weight_sums
from hepsnake.pause import pause_point

DEFAULT_MAX_CONSTITUENTS = 40
WEIGHT_BLOCK = 1 << 20  # jets per read of the written weights (the negative-weight figures)
# an entry-numbered file's events are numbered from its index in the sample times this
FILE_EVENT_STRIDE = 1 << 32
T = TypeVar("T")
log = logging.getLogger("hepsnake")


def file_record(path: str) -> dict[str, Any]:
    """Size and xxh3-64 checksum of a local input file (remote files: the redacted URL only)."""
    if is_remote(path):
        return {"path": redact_url(path)}
    digest = xxhash.xxh3_64()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            digest.update(block)
    return {"path": path, "size": os.path.getsize(path), "xxh3_64": digest.hexdigest()}


def storage_dtype(values: np.ndarray) -> np.dtype:
    """float32 for floating columns; integers and booleans keep their type."""
    return np.dtype(np.float32) if values.dtype.kind == "f" else values.dtype


def check_finite(chunk: JetChunk, where: str) -> None:
    """Raise naming the first variable that holds NaN or inf."""
    columns = [("jets", k, v) for k, v in chunk.jets.items()]
    columns += [("cuts", k, v) for k, v in chunk.aux.items()]
    columns += [(c, k, v) for c, jag in chunk.collections.items() for k, v in jag.fields.items()]
    for coll, key, values in columns:
        if values.dtype.kind == "f":
            bad = np.count_nonzero(~np.isfinite(values))
            if bad:
                raise HepsnakeError(where, f"{bad} non-finite (NaN/inf) values in '{coll}.{key}'")


class SampleWriter:
    """Turns chunks into the FTAG tables of one output file, with per-file rollback."""

    def __init__(self, h5: h5py.File, contract: ConvertContract) -> None:
        conv, sample, classes = contract.convert, contract.sample, contract.class_names
        self.writer = TableWriter(h5, conv.compression)
        self.h5 = h5
        self.max_n = conv.max_constituents
        self.sort_by = conv.sort_by
        self.label = classes.index(sample.label) if sample.label in classes else -1
        self.xsec = float(sample.xsec)
        # every parameter of the run, NaN where this sample has none: one jets dtype per run
        self.params = {p: sample.params.get(p, np.nan) for p in contract.run_parameters}
        self.dtypes: dict[str, np.dtype] = {}
        self.truncated = 0

    def jets_table(self, chunk: JetChunk) -> np.ndarray:
        n = len(chunk)
        cols = dict(chunk.jets)
        cols[LABEL] = np.full(n, self.label, dtype=np.int32)
        base = cols.get("mcEventWeight", np.ones(n))
        cols["weight"] = (np.asarray(base, dtype=np.float64) * self.xsec).astype(np.float32)
        for key, value in self.params.items():
            cols[key] = np.full(n, value, dtype=np.float32)
        return self.table("jets", cols)

    def table(self, name: str, cols: dict[str, np.ndarray]) -> np.ndarray:
        if name not in self.dtypes:
            self.dtypes[name] = np.dtype([(k, storage_dtype(v)) for k, v in cols.items()])
        dtype = self.dtypes[name]
        if set(cols) != set(dtype.names):
            raise HepsnakeError(name, f"variables changed between files: {sorted(cols)}")
        out = np.empty(len(next(iter(cols.values()))), dtype=dtype)
        for key in dtype.names:
            out[key] = cols[key]
        return out

    def write(self, chunk: JetChunk) -> None:
        self.writer.append("jets", self.jets_table(chunk))
        for name, jag in chunk.collections.items():
            max_n = self.max_n.get(name, DEFAULT_MAX_CONSTITUENTS)
            if name not in self.dtypes:
                fields = [("valid", np.dtype(bool))]
                fields += [(k, storage_dtype(v)) for k, v in jag.fields.items()]
                self.dtypes[name] = np.dtype(fields)
            self.truncated += int(np.clip(jag.counts - max_n, 0, None).sum())
            self.writer.append(name, pad(jag, max_n, self.dtypes[name], self.sort_by.get(name)))

    def lengths(self) -> dict[str, int]:
        return self.writer.lengths()

    def rollback(self, lengths: dict[str, int]) -> None:
        for name, ds in self.h5.items():
            ds.resize(lengths.get(name, 0), axis=0)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress]:
    """A rich progress bar over entries read (silent when disabled)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not enabled) as progress:
        yield progress


def convert(
    contract: ConvertContract,
    output: str | Path,
    summary: str | Path,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Convert every file of the contract's sample in one job; write ``output`` (HDF5) and
    ``summary`` (JSON).

    Both files are written under temporary names and renamed into place together at the end,
    so a failure leaves neither. Returns the summary: per-file entries and jets, skipped files
    with reasons, totals. (The workflow converts a sample in parts and gathers them:
    :mod:`hepsnake.convert.part`, :mod:`hepsnake.convert.gather`.)
    """
    configure_xrootd(contract.convert.xrootd)
    files = expand_urls(contract.sample.name, contract.sample.files)
    with (
        atomic_path(output) as tmp,
        atomic_path(summary) as tmp_summary,
        progress_bar(show_progress) as bar,
    ):
        with h5py.File(tmp, "w") as h5:
            written = write_files(h5, contract, files, 0, bar)
            report = {"sample": contract.sample.name, **written}
            report |= sample_totals(contract, written)
            report |= weight_totals(contract.sample.name, jet_weight_sums(h5))
            set_file_attrs(h5, contract, report["files"], report["skipped"])
        tmp_summary.write_text(json_text(report))
    return report


def write_files(
    h5: h5py.File, contract: ConvertContract, files: Sequence[str], first_file: int, bar: Progress
) -> dict[str, Any]:
    """Stream ``files`` (``first_file`` the index of the first in the sample's file list)
    into the open output ``h5``; return their ``files`` records, the ``skipped`` files,
    ``jets`` and ``truncated_constituents``.

    Entry indices used as event numbers (flat readers without an ``eventNumber`` mapping)
    start at the file's index in the sample times :data:`FILE_EVENT_STRIDE`: events of
    different files never share a number, whichever files a job converts.
    """
    conv, sample = contract.convert, contract.sample
    report: dict[str, Any] = {"files": [], "skipped": []}
    out = SampleWriter(h5, contract)
    task = bar.add_task(f"convert {sample.name}", total=0)
    for index, path in enumerate(files, start=first_file):
        before = out.lengths()
        first_event = index * FILE_EVENT_STRIDE
        try:
            with redacted_errors(path):
                record = convert_file(path, contract, out, bar, task, first_event)
        except Exception as exc:  # any per-file failure may be skipped, never a traceback
            if write_errno(exc) is not None:
                raise  # the output cannot be written (disk full...): no input file is to blame
            if not isinstance(exc, HepsnakeError):
                why = f"cannot convert ({redact_text(first_line(exc), path)})"
                exc = HepsnakeError(redact_url(path), why)
            if not conv.skip_bad_files:
                raise exc from None
            out.rollback(before)
            report["skipped"].append({"path": redact_url(path), "reason": str(exc)})
            continue
        report["files"].append(record)
    report["jets"] = h5["jets"].shape[0] if "jets" in h5 else 0
    report["truncated_constituents"] = out.truncated
    if report["jets"]:
        h5["jets"].attrs["class_names"] = list(contract.class_names)
        h5["jets"].attrs[LABEL] = list(contract.class_names)
        h5["jets"].attrs["energy_unit"] = report["files"][0]["energy_unit"]
    return report


def sample_totals(contract: ConvertContract, written: dict[str, Any]) -> dict[str, Any]:
    """The sample-level figures of its converted files (``written``: :func:`write_files`'
    keys, over every file of the sample): jets dropped by the cuts, failures per cut, the
    energy unit, the event number sources. Zero jets is an error naming the sample."""
    cuts, name, records = list(contract.convert.cuts), contract.sample.name, written["files"]
    if written["jets"] == 0:
        why = f"zero jets after cuts {cuts}" if records else "no readable file"
        raise HepsnakeError(f"sample '{name}'", why)
    totals: dict[str, Any] = {
        "dropped": {"cuts": sum(f["jets_read"] - f["jets_written"] for f in records)},
        "cuts": {cut: sum(f["failed_cuts"][i] for f in records) for i, cut in enumerate(cuts)},
        "energy_unit": records[0]["energy_unit"],
        "event_number_source": list(dict.fromkeys(f["event_number_source"] for f in records)),
    }
    for text in mev_warnings(cuts, list(totals["cuts"].values()), totals["energy_unit"]):
        log.warning("convert %s: %s", name, text)
    return totals


def jet_weight_sums(h5: h5py.File) -> dict[str, float]:
    """The :func:`~hepsnake.negative_weights.weight_sums` of the jets of the open converted
    file ``h5`` (read in blocks; zeros without jets)."""
    if "jets" not in h5:
        return weight_sums([])
    weights, n_jets = h5["jets"].fields("weight"), h5["jets"].shape[0]
    return weight_sums(weights[a : a + WEIGHT_BLOCK] for a in range(0, n_jets, WEIGHT_BLOCK))


def weight_totals(sample: str, sums: dict[str, float]) -> dict[str, Any]:
    """The ``negative_weights`` figures of ``sample`` from its jets' weight ``sums`` and the
    ``warnings`` list with their warning, if any."""
    found = figures_of(sums)
    negative = warning(sample, found, None)
    if negative:
        log.warning("convert %s: %s", sample, negative["message"])
    return {"negative_weights": found, "warnings": [negative] if negative else []}


def set_file_attrs(
    h5: h5py.File,
    contract: ConvertContract,
    inputs: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> None:
    """The provenance attributes of a converted file: version, sample, role, the input file
    records (in the order of their jets), the skipped files and the contract (URLs
    redacted)."""
    set_attrs(
        h5,
        {
            "hepsnake_version": __version__,
            "sample": contract.sample.name,
            "role": contract.sample.role,
            "inputs": inputs,
            "skipped": skipped,
            "config": to_data(redacted(contract)),
        },
    )


def redacted(contract: ConvertContract) -> ConvertContract:
    """``contract`` with its sample's file URLs redacted, for the provenance record."""
    files = tuple(redact_url(f) for f in contract.sample.files)
    return dataclasses.replace(contract, sample=dataclasses.replace(contract.sample, files=files))


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items``, produced by a background thread at most ``depth`` items ahead.

    Reading the next chunk (basket decompression releases the GIL) overlaps with padding and
    writing the current one; at most ``depth + 2`` chunks are alive, whatever the file size.
    An exception of ``items`` is raised here, after the items that preceded it. When the
    caller stops early, the thread finishes the item it is reading and closes ``items``.
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        end: tuple[bool, Any] = (False, None)
        try:
            for item in items:
                slots.put((True, item))
                if stop.is_set():
                    break
        except BaseException as exc:
            end = (False, exc)
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:
                end = end if end[1] is not None else (False, exc)
            slots.put(end)

    thread = threading.Thread(target=produce, name="hepsnake-read", daemon=True)
    thread.start()
    try:
        while True:
            is_item, value = slots.get()
            if not is_item:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pending put, then wait for the thread
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.01)


@contextmanager
def redacted_errors(path: str) -> Iterator[None]:
    """Errors about the URL ``path`` name it without the credentials it may embed."""
    try:
        yield
    except HepsnakeError as exc:
        if redact_url(path) == path:
            raise
        raise HepsnakeError(redact_text(exc.where, path), redact_text(exc.cause, path)) from None


def convert_file(
    path: str,
    contract: ConvertContract,
    out: SampleWriter,
    bar: Progress,
    task: Any,
    first_event: int = 0,
) -> dict[str, Any]:
    """Stream one input file into ``out``; return its record (checksum, entries, jets kept).

    ``first_event`` is the event number of the file's first entry where entry indices serve
    as event numbers.
    """
    cuts, conv = list(contract.convert.cuts), contract.convert
    source = open_source(path, contract.reader, contract.sample.tree, first_event, cut_names(cuts))
    check_cut_names(contract, source, path)
    pause_point("convert.file_opened")
    bar.update(task, total=bar.tasks[task].total + source.num_entries)
    jets_read = jets_kept = 0
    failed = [0] * len(cuts)
    for n_entries, chunk in prefetched(source.chunks(conv.chunk_size)):
        jets_read += len(chunk)
        check_finite(chunk, path)  # before the cuts, which would silently drop a NaN jet
        if len(chunk):
            mask, chunk_failed = apply_cuts(chunk.jets, cuts, path, chunk.aux)
            failed = [a + b for a, b in zip(failed, chunk_failed, strict=True)]
            chunk = chunk.select(mask)
        if len(chunk):
            out.write(chunk)
            pause_point("convert.chunk_written")  # tests: the output is still temporary
        jets_kept += len(chunk)
        bar.advance(task, n_entries)
    record = file_record(path)
    record.update(
        entries=source.num_entries,
        jets_read=jets_read,
        jets_written=jets_kept,
        failed_cuts=failed,
        energy_unit=source.energy_unit,
        event_number_source=source.event_number_source,
    )
    return record
