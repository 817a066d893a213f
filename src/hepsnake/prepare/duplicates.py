"""Duplicated input files: an error naming both places, or (``prepare.deduplicate``) dropped.

The same file twice (in one sample or in two) would put its events in the training data twice,
or in two splits at once: a train/test leak. Two checks find it. With the config, files with
the same resolved local path (or the same URL); in the split job, input files with the same
xxh3-64 checksum (recorded by convert), which also catches copies under another name. With
``prepare.deduplicate: true`` the config check passes and the split keeps the first copy (in
the order of the split's inputs, the order of the sample list) and drops the jets of the others.
"""

from typing import Any

import numpy as np

from hepsnake.config.checks import SWITCH, place
from hepsnake.errors import HepsnakeError
from hepsnake.io.h5 import read_json_attr


def file_rows(h5: Any, path: str, n_jets: int) -> list[tuple[str, str, slice]]:
    """Per input file of a converted sample: its identity (checksum, else URL), its recorded
    path and its rows of ``jets`` (convert writes the files' jets one after the other)."""
    records = read_json_attr(h5, "inputs", "converted file")
    counts = [int(r["jets_written"]) for r in records]
    if sum(counts) != n_jets:
        raise HepsnakeError(path, f"inputs record {sum(counts)} jets, 'jets' holds {n_jets}")
    ends = np.cumsum(counts)
    return [
        (r.get("xxh3_64", r["path"]), r["path"], slice(int(end - n), int(end)))
        for r, n, end in zip(records, counts, ends, strict=True)
    ]


def unique_rows(inputs: list[Any], deduplicate: bool) -> list[np.ndarray]:
    """Per split input (``path``, ``name``, ``h5``, ``n_jets``), a mask of the jets to keep.

    A file whose checksum was seen before (in this or an earlier input) is an error naming
    both samples and the file, or, with ``deduplicate``, its jets are masked out.
    """
    seen: dict[str, str] = {}
    masks = []
    for inp in inputs:
        keep = np.ones(inp.n_jets, dtype=bool)
        for key, shown, rows in file_rows(inp.h5, inp.path, inp.n_jets):
            if key not in seen:
                seen[key] = inp.name
            elif deduplicate:
                keep[rows] = False
            else:
                checksum = f" (xxh3 {key})" if key != shown else ""
                raise HepsnakeError(
                    inp.path,
                    f"input file '{shown}'{checksum} is {place(inp.name, seen[key])}: "
                    f"a train/test leak ({SWITCH})",
                )
        masks.append(keep)
    return masks
