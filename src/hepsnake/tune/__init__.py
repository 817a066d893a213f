"""Hyperparameter studies as Snakemake targets: the files of ``results/tune/<study>/``."""

from pathlib import Path

TUNED_PREFIX = "tune."  # a ``models:`` entry tune.<study> is the study's best.yaml
TUNE_DIR = Path("results") / "tune"


def best_path(study: str) -> Path:
    """The best trial's model config, ``results/tune/<study>/best.yaml``."""
    return TUNE_DIR / study / "best.yaml"


def journal_path(study: str) -> Path:
    """The default Optuna storage of ``study``: a journal file beside its trials."""
    return TUNE_DIR / study / "journal.log"
