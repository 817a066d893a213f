"""The paths of the convert stage's jobs under ``results/``: the one place the rules and the
stage code take them from.

The upper-case names are templates with ``{sample}`` and ``{part}`` fields: a rule uses them as
they are (the fields are its wildcards), code fills them with the builder functions below. A
sample is converted in parts (``results/h5/{sample}/part-NNNNN.h5``, each with its status
JSON), gathered into ``results/h5/{sample}.h5``, a virtual dataset over the parts; a sample
with remote globs is listed once into ``results/h5/{sample}/files.json``.
"""

RESULTS = "results"

CONVERTED = f"{RESULTS}/h5/{{sample}}.h5"
CONVERT_SUMMARY = f"{RESULTS}/h5/{{sample}}.summary.json"
PARTS_DIR = f"{RESULTS}/h5/{{sample}}"
PART = f"{PARTS_DIR}/part-{{part}}.h5"
PART_STATUS = f"{PARTS_DIR}/part-{{part}}.json"
PART_RETRY = f"{PARTS_DIR}/part-{{part}}.retry"  # written by the gather when the part failed
FILE_LIST = f"{PARTS_DIR}/files.json"

LOGS = f"{RESULTS}/logs/convert"
PART_LOG = f"{LOGS}/{{sample}}/part-{{part}}.log"
GATHER_LOG = f"{LOGS}/{{sample}}.log"
FILE_LIST_LOG = f"{LOGS}/{{sample}}/files.log"

PART_WILDCARD = r"\d+"  # a part's index as its files name it (:func:`part_name`)


def part_name(index: int) -> str:
    """The ``{part}`` of part ``index`` in file names: five digits or more (``00007``)."""
    return f"{index:05d}"


def converted(sample: str) -> str:
    """The gathered HDF5 file of ``sample``."""
    return CONVERTED.format(sample=sample)


def convert_summary(sample: str) -> str:
    """The convert summary JSON of ``sample``."""
    return CONVERT_SUMMARY.format(sample=sample)


def part_file(sample: str, index: int) -> str:
    """The HDF5 file of part ``index`` of ``sample``."""
    return PART.format(sample=sample, part=part_name(index))


def part_status(sample: str, index: int) -> str:
    """The status JSON of part ``index`` of ``sample``."""
    return PART_STATUS.format(sample=sample, part=part_name(index))


def part_retry(sample: str, index: int) -> str:
    """The retry mark of part ``index`` of ``sample``: an input of the part once it exists,
    rewritten by the gather whenever the part failed, so Snakemake converts it again."""
    return PART_RETRY.format(sample=sample, part=part_name(index))


def file_list(sample: str) -> str:
    """The listing of ``sample``'s remote globs (written once, read by every later DAG)."""
    return FILE_LIST.format(sample=sample)
