"""Config mistakes caught before any job runs, that otherwise surface only after conversion
and splitting (at scale: hours of batch jobs later).

From the config alone: every training input is a variable that each sample's reader writes,
and the ``prepare.label_map`` variable a jet variable of each sample it labels. From the first
file of each sample, opened for its branch list only (no entry is read): every branch the
reader maps exists, and every name a cut reads is a jet variable or a branch. Run when the
Snakemake DAG is built (``snakemake -n`` included) for local files. A remote file, or one no
stage has written yet (the toy's), is checked by its convert job: the job checks each file it
opens (:func:`check_cut_names`) before reading any entry.
"""

import os
from collections.abc import Sequence

from hepsnake.config.contracts import ConvertContract, Inputs, LabelMap
from hepsnake.config.samples import expand_files
from hepsnake.convert.cuts import cut_names
from hepsnake.errors import HepsnakeError
from hepsnake.io.expressions import names
from hepsnake.io.remote import is_remote
from hepsnake.io.sources import Source, open_source, reader_variables


def check_inputs_mapped(
    samples: Sequence[ConvertContract], inputs: Inputs, label_map: LabelMap | None
) -> None:
    """Each input variable is written by every sample's reader (in the dataset
    ``inputs.input_map`` names), and the ``prepare.label_map`` variable is a jet variable of
    every sample without a label (``samples``: each sample's convert contract)."""
    for convert in samples:
        name, reader = convert.sample.name, convert.sample.reader
        written = reader_variables(convert.reader)
        for coll, variables in inputs.variables.items():
            dataset = inputs.dataset(coll)
            if dataset not in written:
                raise HepsnakeError(
                    f"config: inputs/variables/{coll}",
                    f"sample '{name}' has no collection '{dataset}': reader '{reader}' writes"
                    f" {', '.join(written)}",
                )
            missing = [v for v in variables if v not in written[dataset]]
            if missing:
                raise HepsnakeError(
                    f"config: inputs/variables/{coll}/{missing[0]}",
                    f"no variable '{missing[0]}' in '{dataset}' of sample '{name}': reader"
                    f" '{reader}' maps {', '.join(written[dataset])}",
                )
        unlabelled = convert.sample.role != "control" and convert.sample.label is None
        if label_map and unlabelled and label_map.variable not in written["jets"]:
            raise HepsnakeError(
                "config: prepare/label_map/variable",
                f"'{label_map.variable}' is no jet variable of sample '{name}': reader"
                f" '{reader}' maps {', '.join(written['jets'])}",
            )


def check_first_file(convert: ConvertContract, path: str) -> None:
    """Open ``path``, a file of ``convert``'s sample, for its branch list: the branches its
    reader maps exist (:func:`~hepsnake.io.sources.open_source` checks), and
    :func:`check_cut_names`."""
    cuts = cut_names(list(convert.convert.cuts))
    check_cut_names(convert, open_source(path, convert.reader, convert.sample.tree, 0, cuts), path)


def check_cut_names(convert: ConvertContract, source: Source, path: str) -> None:
    """Each name a cut of ``convert`` reads is a jet variable of its reader or a branch of
    ``source``, the open file ``path`` (no entry is read)."""
    sample, cuts = convert.sample, convert.convert.cuts
    read_by_cuts = cut_names(list(cuts))
    known = {*reader_variables(convert.reader)["jets"], *source.cut_aux}
    unknown = [n for n in read_by_cuts if n not in known]
    if unknown:
        cut = next(c for c in cuts if unknown[0] in names(c, "convert: cuts"))
        raise HepsnakeError(
            path,
            f"cut '{cut}' uses unknown jet variable '{unknown[0]}' (neither a jet variable of"
            f" reader '{sample.reader}' nor a branch of the file)",
        )


def preflight(
    samples: Sequence[ConvertContract], inputs: Inputs, label_map: LabelMap | None
) -> None:
    """:func:`check_inputs_mapped`, then :func:`check_first_file` on the first file of each
    sample that is local and exists (one open per sample, whatever its number of files);
    with ``convert.skip_bad_files`` a bad first file is the convert job's to skip."""
    check_inputs_mapped(samples, inputs, label_map)
    for convert in samples:
        if convert.convert.skip_bad_files:
            continue
        first = next(iter(expand_files(convert.sample.name, convert.sample.files)), None)
        if first is None or is_remote(first) or not os.path.exists(first):
            continue
        try:
            check_first_file(convert, first)
        except HepsnakeError as exc:  # the DAG's many samples: say which one
            raise HepsnakeError(
                f"{exc.where} (sample '{convert.sample.name}')", exc.cause
            ) from None
