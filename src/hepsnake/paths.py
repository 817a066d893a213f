"""Every path a job reads or writes under ``results/``: the one place the Snakefile, the rules
and the stage code take them from (rules may use the ``{model}``-style templates as
wildcards)."""

from pathlib import Path

RESULTS = Path("results")
TUNED_PREFIX = "tune."  # a ``models:`` entry tune.<study> is the study's best.yaml


def best_path(study: str) -> Path:
    """The best trial's model config, ``results/tune/<study>/best.yaml``."""
    return RESULTS / "tune" / study / "best.yaml"


def journal_path(study: str) -> Path:
    """The default Optuna storage of ``study``: a journal file beside its trials."""
    return RESULTS / "tune" / study / "journal.log"
