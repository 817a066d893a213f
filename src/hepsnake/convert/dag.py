"""What the convert rules read, for Snakemake's input functions: each sample's parts, found once
per DAG (a sample of 10,000 files is globbed once, not once per job)."""

import os
from collections.abc import Callable
from typing import Any

from hepsnake import paths
from hepsnake.config import is_remote, sample_by_name
from hepsnake.convert.file_list import needs_listing
from hepsnake.convert.parts import Part, sample_parts
from hepsnake.errors import HepsnakeError


class SampleParts:
    """The parts of the samples of ``config``. ``listed(sample)`` returns once the sample's
    listing exists (Snakemake: the listing checkpoint's ``get``, which stops the DAG there
    until the listing job has run); it is called only for samples with remote globs."""

    def __init__(self, config: dict[str, Any], listed: Callable[[str], object]) -> None:
        self.config = config
        self.listed = listed
        self.cache: dict[tuple[str, int], list[Part]] = {}

    def parts(self, sample: str) -> list[Part]:
        """The parts of ``sample`` (again only when its listing changed)."""
        version = 0
        if needs_listing(sample_by_name(self.config, sample)):
            self.listed(sample)
            version = os.stat(paths.file_list(sample)).st_mtime_ns
        key = (sample, version)
        if key not in self.cache:
            self.cache[key] = sample_parts(self.config, sample)
        return self.cache[key]

    def part_inputs(self, sample: str, index: int) -> list[str]:
        """The local files of part ``index`` of ``sample``, the sample's listing if any, and
        the part's retry mark once a gather wrote one (newer than the part's outputs when
        the part failed: Snakemake converts it again)."""
        parts = self.parts(sample)
        if not 0 <= index < len(parts):
            raise HepsnakeError(f"sample '{sample}'", f"has {len(parts)} parts, no part {index}")
        inputs = [f for f in parts[index].files if not is_remote(f)]
        if needs_listing(sample_by_name(self.config, sample)):
            inputs.append(paths.file_list(sample))
        retry = paths.part_retry(sample, index)
        if os.path.exists(retry):
            inputs.append(retry)
        return inputs

    def gather_inputs(self, sample: str) -> list[str]:
        """Every part file and part status of ``sample``."""
        return [
            path(sample, part.index)
            for part in self.parts(sample)
            for path in (paths.part_file, paths.part_status)
        ]
