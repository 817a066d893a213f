"""The sample list: from the config or a TSV sample sheet, validated, with its files."""

import contextlib
import csv
import functools
import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepsnake.config.schema import SCHEMA, Origin, Where, check_schema, schema_validator
from hepsnake.errors import HepsnakeError
from hepsnake.io.remote import is_remote

SAMPLE_COLUMNS = ("name", "files", "reader", "tree", "role", "label", "params", "xsec")


def parse_params(text: str, where: str = "samples: params") -> dict[str, float]:
    """``"mS=16;ctau=1"`` → ``{"mS": 16.0, "ctau": 1.0}``."""
    params = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise HepsnakeError(where, f"'{item}' is not NAME=NUMBER")
    return params


def read_sheet(path: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a TSV sample sheet as (line number, {column: non-empty cell}).

    ``#`` lines and blank lines are skipped; the first other line names the columns.
    """
    sheet = Path(path)
    if not sheet.is_file():
        raise HepsnakeError(path, "sample sheet not found")
    header: list[str] | None = None
    rows = []
    for n, line in enumerate(sheet.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line], delimiter="\t"))]
        if header is None:
            header = cells
            for column in header:
                if column not in SAMPLE_COLUMNS or header.count(column) > 1:
                    why = "unknown" if column not in SAMPLE_COLUMNS else "repeated"
                    raise HepsnakeError(
                        f"{path}: line {n}",
                        f"{why} column '{column}' (columns: {', '.join(SAMPLE_COLUMNS)})",
                    )
            continue
        if len(cells) > len(header):
            raise HepsnakeError(
                f"{path}: line {n}", f"{len(cells)} cells but {len(header)} columns"
            )
        rows.append((n, {k: v for k, v in zip(header, cells, strict=False) if v}))
    if not rows:
        raise HepsnakeError(path, "no samples (a header line, then one line per sample)")
    return rows


def sheet_where(path: str, line: int) -> Where:
    """The ``where`` of a sheet row: ``SHEET: line N, column 'COL'``."""

    def where(*keys: str | int) -> str:
        column = f", column '{keys[0]}'" if keys else ""
        return f"{path}: line {line}{column}"

    return where


def sample_rows(
    samples: str | list[dict[str, Any]], origin: Origin
) -> list[tuple[dict[str, Any], Where]]:
    """Each sample (from the sheet or the inline list) with strings converted, validated with
    ``$defs/sample`` (defaults filled), with the ``where`` of its error lines."""
    if isinstance(samples, str):
        rows = [(row, sheet_where(samples, n), f"line {n}") for n, row in read_sheet(samples)]
    else:
        rows = [
            (dict(row), functools.partial(origin.where, "samples", i), f"samples/{i}")
            for i, row in enumerate(samples)
        ]
    out: list[tuple[dict[str, Any], Where]] = []
    first: dict[str, str] = {}
    for sample, where, label in rows:
        if isinstance(sample.get("files"), str):
            sample["files"] = sample["files"].replace(",", " ").split()
        if isinstance(sample.get("params"), str):
            sample["params"] = parse_params(sample["params"], where("params"))
        if isinstance(samples, str) and "xsec" in sample:
            with contextlib.suppress(ValueError):  # else the schema names the cell
                sample["xsec"] = float(sample["xsec"])
        check_schema(sample, schema_validator(SCHEMA, "$defs/sample"), where)
        # ~ as in a shell: the examples name the scikit-hep-testdata cache ~/.local/skhepdata
        sample["files"] = [f if is_remote(f) else os.path.expanduser(f) for f in sample["files"]]
        name = sample["name"]
        if name in first:
            raise HepsnakeError(
                where("name"), f"duplicate sample name '{name}' (first at {first[name]})"
            )
        first[name] = label
        out.append((sample, where))
    return out


def load_samples(
    samples: str | list[dict[str, Any]], origin: Origin | None = None
) -> list[dict[str, Any]]:
    """The validated sample list from the config list or a TSV sample sheet."""
    return [sample for sample, _ in sample_rows(samples, origin or Origin())]


def samples_with_role(config: dict[str, Any], *roles: str) -> list[str]:
    """Names of the samples whose role is one of ``roles``."""
    return [s["name"] for s in config["samples"] if s["role"] in roles]


def sample_by_name(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The sample called ``name``."""
    for sample in config["samples"]:
        if sample["name"] == name:
            return sample
    raise HepsnakeError("config: samples", f"no sample named '{name}'")


def expand_files(sample: str, files: Sequence[str]) -> list[str]:
    """Sample ``sample``'s ``files`` with local globs expanded (sorted); a pattern matching
    nothing is an error.

    URLs are kept as given: nothing here touches the network, so Snakemake builds its DAG
    offline; the convert job lists remote globs (:func:`hepsnake.io.listing.expand_urls`).
    """
    out: list[str] = []
    for pattern in files:
        if is_remote(pattern) or not glob.has_magic(pattern):
            out.append(pattern)
            continue
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise HepsnakeError(pattern, f"no file matches (sample '{sample}')")
        out.extend(matched)
    return out
