"""A sample's input files, expanded once: local globs when the config is read, remote globs by
one listing job whose file (:func:`hepsnake.paths.file_list`) every later DAG reads, so
``snakemake -n`` needs no network once a sample is listed."""

import json
from pathlib import Path
from typing import Any

from hepsnake import paths
from hepsnake.config import expand_files, sample_by_name
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_json
from hepsnake.io.listing import expand_urls, is_remote_glob
from hepsnake.io.remote import redact_url


def needs_listing(sample: dict[str, Any]) -> bool:
    """Whether ``sample`` has a remote glob, which only a listing job can expand."""
    return any(is_remote_glob(p) for p in sample["files"])


def patterns(sample: dict[str, Any]) -> list[str]:
    """The sample's file patterns as a listing records them (redacted)."""
    return [redact_url(p) for p in sample["files"]]


def write_file_list(config: dict[str, Any], sample_name: str, output: str | Path) -> list[str]:
    """List ``sample_name``'s files (remote globs through the storage) into ``output``;
    return them."""
    sample = sample_by_name(config, sample_name)
    files = expand_urls(sample)
    write_json(output, {"sample": sample_name, "patterns": patterns(sample), "files": files})
    return files


def sample_files(config: dict[str, Any], sample_name: str) -> list[str]:
    """Every input file of ``sample_name``, in order: its local globs expanded, its remote
    globs as its listing holds them (the listing must exist and be of the current patterns)."""
    sample = sample_by_name(config, sample_name)
    if not needs_listing(sample):
        return expand_files(sample)
    path = paths.file_list(sample_name)
    if not Path(path).is_file():
        raise HepsnakeError(
            path,
            f"sample '{sample_name}' has remote globs and is not listed yet"
            f" (`hepsnake list-files --sample {sample_name}` or snakemake lists it)",
        )
    listing = json.loads(Path(path).read_text())
    if listing["patterns"] != patterns(sample):
        raise HepsnakeError(
            path,
            f"lists {listing['patterns']}, but sample '{sample_name}' now has"
            f" {patterns(sample)}: list it again",
        )
    return list(listing["files"])
