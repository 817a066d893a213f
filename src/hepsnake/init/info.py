"""The findings of ``hepsnake init`` about one file (:class:`FileInfo`)."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np


@dataclass
class FileInfo:
    """What :func:`hepsnake.init.inspect.inspect_file` found (``reader``: physlite or flat)."""

    path: str
    reader: str
    tree: str
    entries: int
    trees: dict[str, int]
    keys: set[str] = field(repr=False)
    jet_prefix: str = ""
    entry: str = "event"  # flat: jet branches jagged per event ("event") or one jet per entry
    unit: str = "GeV"
    jets: int = 0
    kinematics: dict[str, str] = field(default_factory=dict)
    # flat, one jet per entry: the other jet variables (name -> branch)
    variables: dict[str, str] = field(default_factory=dict)
    # constituent collections read as lists per jet: name -> {variable -> branch}
    collections: dict[str, dict[str, str]] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)  # constituents per jet (99 % quantile)
    constants: set[str] = field(default_factory=set)  # branches of one value in the first entries
    label: str | None = None
    label_values: dict[int, int] = field(default_factory=dict)
    label_candidates: list[str] = field(default_factory=list)
    taggers: list[str] = field(default_factory=list)
    btag_container: str | None = None
    # per-event collections attached to jets by index branches: name -> {link, variables}
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    weight: str | None = None
    event_number: str | None = None
    b_quarks: list[str] = field(default_factory=list)
    b_quarks_empty: bool = False
    notes: list[str] = field(default_factory=list)


def value_counts(values: ak.Array) -> dict[int, int]:
    """How often each (integer) value occurs, sorted by value."""
    flat = ak.to_numpy(ak.flatten(values, axis=None)).astype(np.int64)
    return dict(sorted(Counter(flat.tolist()).items()))
