"""A sample's files grouped into parts, one convert job each (``convert.files_per_job``)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hepsnake.config import is_remote
from hepsnake.convert.file_list import sample_files
from hepsnake.errors import HepsnakeError


@dataclass(frozen=True)
class Part:
    """Part ``index`` of a sample: its ``files``, the first of which is file ``first_file``
    of the sample's file list."""

    index: int
    first_file: int
    files: tuple[str, ...]


def group_files(files: Sequence[str], files_per_job: int | dict[str, int]) -> list[Part]:
    """``files`` in list order, cut into parts of ``files_per_job`` files: a number for
    every file, or ``{local: n, remote: m}``, where a local file takes 1/n of a job and a
    remote one 1/m (a sample of both fills each job to the same share)."""
    if isinstance(files_per_job, int):
        local = remote = files_per_job
    else:
        local, remote = files_per_job["local"], files_per_job["remote"]
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


def sample_parts(config: dict[str, Any], sample_name: str) -> list[Part]:
    """The parts of ``sample_name``, whose files
    :func:`~hepsnake.convert.file_list.sample_files` gives."""
    return group_files(sample_files(config, sample_name), config["convert"]["files_per_job"])


def sample_part(config: dict[str, Any], sample_name: str, index: int) -> Part:
    """Part ``index`` of ``sample_name``; an index past its parts names how many it has."""
    parts = sample_parts(config, sample_name)
    if not 0 <= index < len(parts):
        raise HepsnakeError(f"sample '{sample_name}'", f"has {len(parts)} parts, no part {index}")
    return parts[index]
