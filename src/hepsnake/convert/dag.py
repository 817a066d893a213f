"""What the convert rules read, for Snakemake's input functions: each sample's parts, found once
per DAG (a sample of 10,000 files is globbed once, not once per job)."""

import functools
import os
from collections.abc import Callable

from hepsnake import paths
from hepsnake.config.contracts import ConvertContract
from hepsnake.convert.file_list import needs_listing, patterns
from hepsnake.convert.parts import Part, part_of, sample_parts
from hepsnake.io.remote import is_remote


class SampleParts:
    """The parts of each sample, whose convert contract ``contract_of(sample)`` gives.
    ``listed(sample)`` returns once the sample's listing exists (Snakemake: the listing
    checkpoint's ``get``, which stops the DAG there until the listing job has run); it is
    called only for samples with remote globs."""

    def __init__(
        self, contract_of: Callable[[str], ConvertContract], listed: Callable[[str], object]
    ) -> None:
        self.contract = functools.cache(contract_of)
        self.listed = listed
        self.cache: dict[tuple[str, int], list[Part]] = {}

    def needs_listing(self, sample: str) -> bool:
        """Whether ``sample`` has remote globs (a listing job expands them)."""
        return needs_listing(self.contract(sample).sample.files)

    def patterns(self, sample: str) -> list[str]:
        """``sample``'s file patterns as its listing records them (redacted)."""
        return patterns(self.contract(sample).sample.files)

    def parts(self, sample: str) -> list[Part]:
        """The parts of ``sample`` (again only when its listing changed)."""
        version = 0
        if self.needs_listing(sample):
            self.listed(sample)
            version = os.stat(paths.file_list(sample)).st_mtime_ns
        key = (sample, version)
        if key not in self.cache:
            self.cache[key] = sample_parts(self.contract(sample))
        return self.cache[key]

    def part_inputs(self, sample: str, index: int) -> list[str]:
        """The local files of part ``index`` of ``sample``, the sample's listing if any, and
        the part's retry mark once a gather wrote one (newer than the part's outputs when
        the part failed: Snakemake converts it again)."""
        part = part_of(self.parts(sample), sample, index)
        inputs = [f for f in part.files if not is_remote(f)]
        if self.needs_listing(sample):
            inputs.append(paths.file_list(sample))
        retry = paths.part_retry(sample, index)
        if os.path.exists(retry):
            inputs.append(retry)
        return inputs

    def gather_inputs(self, sample: str) -> list[str]:
        """Every part file of ``sample``."""
        return [paths.part_file(sample, part.index) for part in self.parts(sample)]
