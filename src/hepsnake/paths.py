"""Every path a job reads or writes under ``results/``: the one place the Snakefile, the rules
and the stage code take them from.

The upper-case names are templates with ``{model}``, ``{sample}``, ``{split}``, ``{study}``,
``{trial}``, ``{toy}`` or ``{name}`` fields: a rule uses them as they are (the fields are its
wildcards), code fills them with :func:`fill`. A stage that writes into a directory names its
files with the ``*_FILES`` tables, so a rule's outputs and the files written cannot drift.
"""

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

RESULTS = "results"
RESOLVED_CONFIG = f"{RESULTS}/config/resolved.yaml"  # the validated config every job reads
TUNED_PREFIX = "tune."  # a ``models:`` entry tune.<study> is the study's best.yaml

SPLITS = ("train", "val", "test")

TOY = f"{RESULTS}/toy/{{toy}}.root"
# a sample is converted in parts (convert.files_per_job files each: a part file and its status
# JSON), gathered into one file (a virtual dataset over the parts) and its summary; a sample
# with remote globs is listed once into its file list
CONVERTED = f"{RESULTS}/h5/{{sample}}.h5"
CONVERT_SUMMARY = f"{RESULTS}/h5/{{sample}}.summary.json"
PARTS_DIR = f"{RESULTS}/h5/{{sample}}"
PART = f"{PARTS_DIR}/part-{{part}}.h5"
PART_RETRY = f"{PARTS_DIR}/part-{{part}}.retry"  # written by the gather when the part failed
FILE_LIST = f"{PARTS_DIR}/files.json"
PART_WILDCARD = r"\d+"  # a part's index as its files name it (:func:`part_name`)

PREPARED = f"{RESULTS}/prepared"
SPLIT = f"{PREPARED}/{{split}}.h5"
DEBUG_SPLIT = f"{PREPARED}/debug_{{split}}.h5"
CONTROL_SPLIT = f"{PREPARED}/control_{{split}}.h5"
SPLIT_SUMMARY = f"{PREPARED}/split_summary.json"
CONTROL_SUMMARY = f"{PREPARED}/control_summary.json"
NORM = f"{PREPARED}/norm_dict.yaml"
CLASS_DICT = f"{PREPARED}/class_dict.yaml"
CLASSES = f"{PREPARED}/classes.yaml"
REWEIGHTING_PLOT = f"{RESULTS}/plots/prepare/reweighting.png"

# rule train's outputs, files of the model's directory
MODEL_DIR = f"{RESULTS}/models/{{model}}"
MODEL_FILES = {
    "best": "best.ckpt",
    "last": "last.ckpt",
    "csv": "metrics.csv",
    "json": "metrics.json",
    "config": "config.yaml",
}
MODEL_OUTPUTS = {key: f"{MODEL_DIR}/{name}" for key, name in MODEL_FILES.items()}
CHECKPOINT = MODEL_OUTPUTS["best"]
TRAINING_METRICS = MODEL_OUTPUTS["json"]

PREDICTIONS = f"{RESULTS}/predictions/{{model}}.h5"
METRICS = f"{RESULTS}/metrics/{{model}}.json"
PLOT_DIR = f"{RESULTS}/plots/{{model}}"
PLOT = f"{PLOT_DIR}/{{name}}.png"
TASK_PLOTS = "tasks"  # the folder of the plots of the model's tasks (a directory output)
TASK_PLOT_DIR = f"{PLOT_DIR}/{TASK_PLOTS}"

# rule export's outputs, files of the export directory
EXPORT_DIR = f"{RESULTS}/export/{{model}}"
EXPORT_FILES = {
    "onnx": "model.onnx",
    "int8": "model.int8.onnx",
    "validation": "validation.json",
    "benchmark": "benchmark.json",
    "plot": "benchmark.png",
    "athena": "model.athena.onnx",
}
EXPORT_OUTPUTS = {key: f"{EXPORT_DIR}/{name}" for key, name in EXPORT_FILES.items()}
ONNX = EXPORT_OUTPUTS["onnx"]
EXPORT_BENCHMARK = EXPORT_OUTPUTS["benchmark"]
EXPORT_PLOT = EXPORT_OUTPUTS["plot"]

TUNE_DIR = f"{RESULTS}/tune/{{study}}"
TRIAL = f"{TUNE_DIR}/trials/{{trial}}.json"
TRIAL_DIR = f"{TUNE_DIR}/trials/{{trial}}"  # the trial's training directory
BEST_MODEL = f"{TUNE_DIR}/best.yaml"
STUDY_SUMMARY = f"{TUNE_DIR}/study.json"
STUDY_HISTORY = f"{TUNE_DIR}/history.png"
STUDY_IMPORTANCES = f"{TUNE_DIR}/importances.png"
JOURNAL = f"{TUNE_DIR}/journal.log"  # the Optuna storage every trial job shares

EPOCHS = f"{RESULTS}/compare/epochs.json"
EPOCHS_PLOT = f"{RESULTS}/plots/compare/epochs.png"
COMPARE_ROC = f"{RESULTS}/plots/compare/roc.png"
REPORT = f"{RESULTS}/report.md"
PAGE_SUFFIX = ".html"  # a Markdown file's HTML page: the same name with this appended
REPORT_PAGE = f"{REPORT}{PAGE_SUFFIX}"  # report.md with its images inlined (one file)
RUNS = f"{RESULTS}/tracking/runs.json"

LOG = f"{RESULTS}/logs/{{name}}.log"
PART_LOG = f"{RESULTS}/logs/convert/{{sample}}/part-{{part}}.log"
GATHER_LOG = f"{RESULTS}/logs/convert/{{sample}}.log"
FILE_LIST_LOG = f"{RESULTS}/logs/convert/{{sample}}/files.log"


def fill(template: str, **names: object) -> str:
    """``template`` with its fields filled."""
    return template.format(**names)


def part_name(index: int) -> str:
    """The ``{part}`` of part ``index`` in file names: five digits or more (``00007``)."""
    return f"{index:05d}"


def part_file(sample: str, index: int) -> str:
    """The HDF5 file of part ``index`` of ``sample``."""
    return fill(PART, sample=sample, part=part_name(index))


def part_retry(sample: str, index: int) -> str:
    """The retry mark of part ``index`` of ``sample``: an input of the part once it exists,
    rewritten by the gather whenever the part failed, so Snakemake converts it again."""
    return fill(PART_RETRY, sample=sample, part=part_name(index))


def file_list(sample: str) -> str:
    """The listing of ``sample``'s remote globs (written once, read by every later DAG)."""
    return fill(FILE_LIST, sample=sample)


FIGURE_FORMATS = ("png", "pdf")  # every plot: PNG for the reports, PDF for notes


def figure_files(png: str | PathLike) -> list[str]:
    """The files a plot is written as: ``png`` (``*.png``, a path or a rule's template) and
    its twin in each other of :data:`FIGURE_FORMATS` (``*.pdf``)."""
    stem = str(png).removesuffix(".png")
    return [f"{stem}.{fmt}" for fmt in FIGURE_FORMATS]


def figure_twins(**plots: str) -> dict[str, str]:
    """A rule's extra outputs for its ``plots`` (output key → PNG): each plot's other
    formats, keyed ``<key>_<format>`` (``plot_pdf``)."""
    return {
        f"{key}_{fmt}": twin
        for key, png in plots.items()
        for fmt, twin in zip(FIGURE_FORMATS[1:], figure_files(png)[1:], strict=True)
    }


def efficiency_plot(variable: str) -> str:
    """The plot of the efficiency and rejections per bin of jet field ``variable``."""
    return f"efficiency_{variable}"


def evaluate_plots(
    sb_scan: bool,
    parameters: bool,
    pt_bins: bool,
    control: bool,
    efficiency_variables: Mapping[str, object] | None = None,
) -> list[str]:
    """The plots rule evaluate writes (each ``{name}.png`` and its PDF in the model's plot
    directory): always, and those the config calls for: S/√B (drawn, or a note saying why
    not), the per-parameter ROC and efficiency, the pt-binned outputs, the control region's
    data/MC outputs, the efficiency per bin of pt and of each ``efficiency_variables``."""
    names = ["roc", "outputs", "training"]
    names += ["sb_scan"] if sb_scan else []
    names += ["roc_param", "param_efficiency"] if parameters else []
    names += ["outputs_pt"] if pt_bins else []
    names += ["control"] if control else []
    variables = [*(["pt"] if pt_bins else []), *(efficiency_variables or {})]
    return names + [efficiency_plot(v) for v in variables]


def evaluate_caption(name: str) -> str:
    """The caption file (``workflow/report/<caption>.rst``) of evaluate's plot ``name``: the
    efficiency plots of every variable share one."""
    return "efficiency" if name.startswith(efficiency_plot("")) else name


def plot_file(directory: str | Path, name: str) -> Path:
    """The file of plot ``name`` in a model's plot ``directory``."""
    return Path(directory) / f"{name}.png"


def page_file(markdown: str | PathLike) -> Path:
    """The HTML page of the Markdown file ``markdown`` (``report.md.html`` beside
    ``report.md``)."""
    return Path(f"{markdown}{PAGE_SUFFIX}")


def best_path(study: str) -> Path:
    """The best trial's model config, ``results/tune/<study>/best.yaml``."""
    return Path(fill(BEST_MODEL, study=study))


def journal_path(study: str) -> Path:
    """The default Optuna storage of ``study``: a journal file beside its trials."""
    return Path(fill(JOURNAL, study=study))
