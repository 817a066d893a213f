"""A sample's input files, expanded once: local globs when the config is read, remote globs by
one listing job whose file (:func:`hepsnake.paths.file_list`) every later DAG reads, so
``snakemake -n`` needs no network once a sample is listed."""

from collections.abc import Sequence
from pathlib import Path

from hepsnake import paths
from hepsnake.config.contracts import ConvertContract
from hepsnake.config.samples import expand_files
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_json
from hepsnake.io.files import read_json
from hepsnake.io.listing import expand_urls, is_remote_glob
from hepsnake.io.remote import redact_url
from hepsnake.io.xrootd import configure as configure_xrootd


def needs_listing(files: Sequence[str]) -> bool:
    """Whether a sample's ``files`` hold a remote glob, which only a listing job can expand."""
    return any(is_remote_glob(p) for p in files)


def patterns(files: Sequence[str]) -> list[str]:
    """A sample's file patterns as a listing records them (redacted)."""
    return [redact_url(p) for p in files]


def write_file_list(contract: ConvertContract, output: str | Path) -> list[str]:
    """List the files of the contract's sample (remote globs through the storage) into
    ``output``; return them."""
    sample = contract.sample
    configure_xrootd(contract.convert.xrootd)
    files = expand_urls(sample.name, sample.files)
    write_json(output, {"sample": sample.name, "patterns": patterns(sample.files), "files": files})
    return files


def sample_files(contract: ConvertContract) -> list[str]:
    """Every input file of the contract's sample, in order: its local globs expanded, its
    remote globs as its listing holds them (the listing must exist and be of the current
    patterns)."""
    sample = contract.sample
    if not needs_listing(sample.files):
        return expand_files(sample.name, sample.files)
    path = paths.file_list(sample.name)
    if not Path(path).is_file():
        raise HepsnakeError(
            path,
            f"sample '{sample.name}' has remote globs and is not listed yet"
            f" (`hepsnake list-files --sample {sample.name}` or snakemake lists it)",
        )
    listing = read_json(path, "file listing", ["patterns", "files"])
    if listing["patterns"] != patterns(sample.files):
        raise HepsnakeError(
            path,
            f"lists {listing['patterns']}, but sample '{sample.name}' now has"
            f" {patterns(sample.files)}: list it again",
        )
    return list(listing["files"])
