"""A sample's files grouped into parts, one convert job each (``convert.files_per_job``)."""

from collections.abc import Sequence
from dataclasses import dataclass

from hepsnake.config.contracts import ConvertContract, FilesPerJob
from hepsnake.convert.file_list import sample_files
from hepsnake.errors import HepsnakeError
from hepsnake.io.remote import is_remote


@dataclass(frozen=True)
class Part:
    """Part ``index`` of a sample: its ``files``, the first of which is file ``first_file``
    of the sample's file list."""

    index: int
    first_file: int
    files: tuple[str, ...]


def group_files(files: Sequence[str], files_per_job: FilesPerJob) -> list[Part]:
    """``files`` in list order, cut into parts of ``files_per_job`` files, where a local file
    takes 1/``local`` of a job and a remote one 1/``remote`` (a sample of both fills each
    job to the same share)."""
    local, remote = files_per_job.local, files_per_job.remote
    capacity = local * remote  # a local file costs `remote` units, a remote one `local`
    parts: list[Part] = []
    start = load = 0
    for i, path in enumerate(files):
        cost = local if is_remote(path) else remote
        if i > start and load + cost > capacity:
            parts.append(Part(len(parts), start, tuple(files[start:i])))
            start, load = i, 0
        load += cost
    if files:
        parts.append(Part(len(parts), start, tuple(files[start:])))
    return parts


def sample_parts(contract: ConvertContract) -> list[Part]:
    """The parts of the contract's sample, whose files
    :func:`~hepsnake.convert.file_list.sample_files` gives."""
    return group_files(sample_files(contract), contract.convert.files_per_job)


def sample_part(contract: ConvertContract, index: int) -> Part:
    """Part ``index`` of the contract's sample (see :func:`part_of`)."""
    return part_of(sample_parts(contract), contract.sample.name, index)


def part_of(parts: Sequence[Part], sample: str, index: int) -> Part:
    """Part ``index`` of ``parts``, those of ``sample``; an index past them names how many
    there are."""
    if not 0 <= index < len(parts):
        raise HepsnakeError(f"sample '{sample}'", f"has {len(parts)} parts, no part {index}")
    return parts[index]
