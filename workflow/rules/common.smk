# Config validation, the resolved config every job reads, and the input functions the rules
# share; the logic lives in hepsnake.config, the paths in hepsnake.paths.
import functools
import sys

from hepsnake import paths
from hepsnake.config import (
    contract,
    part_digest,
    stage_digest,
    workflow_config,
    write_resolved,
)
from hepsnake.convert.dag import SampleParts
from hepsnake.convert.preflight import preflight
from hepsnake.errors import HepsnakeError

# the checks and the one error line of the hepsnake command: file, key path, what is allowed;
# then the resolved config, rewritten only when its content changes (a batch job's re-read of
# the Snakefile leaves it as it is); then the inputs, branches and cuts against the readers
# and each sample's first file (once, in the process that builds the DAG, not again in each
# batch job)
try:
    RESOLVED = workflow_config(config, workflow.configfiles)
    write_resolved(RESOLVED, paths.RESOLVED_CONFIG)
    if workflow.is_main_process:
        preflight(
            [contract(RESOLVED, "convert", sample=s["name"]) for s in config["samples"]],
            contract(RESOLVED, "norm").inputs,
            contract(RESOLVED, "split").prepare.label_map,
        )
except HepsnakeError as exc:
    sys.exit(f"hepsnake: error: {exc}")

# every job reads the resolved config (and is told which model, sample or study)
CONFIG = paths.RESOLVED_CONFIG
SAMPLES = [s["name"] for s in config["samples"]]
MAIN_SAMPLES = RESOLVED.roles("train", "test")
CONTROL_SAMPLES = RESOLVED.roles("control")
TOYS = list(config.get("simulate", {}).get("samples", {}))
SPLITS = list(paths.SPLITS)
MODELS = list(config["models"])
EXPORTED = RESOLVED.exported
EVALUATE_PLOTS = RESOLVED.evaluate_plots
TUNED_STUDIES = RESOLVED.tuned_studies


def digest(stage, **names):
    """A rule's params entry: the hash of its stage's contract (Snakemake reruns a job when
    what its stage reads changes)."""
    return stage_digest(RESOLVED, stage, **names)


def prepared_inputs(adversarial):
    """Prepared splits and dicts; adversarial models also read the control region."""
    inputs = {split: paths.fill(paths.SPLIT, split=split) for split in ("train", "val")}
    inputs |= {"norm": paths.NORM, "class_dict": paths.CLASS_DICT}
    if adversarial:
        inputs |= {
            f"control_{s}": paths.fill(paths.CONTROL_SPLIT, split=s) for s in ("train", "val")
        }
    return inputs


def train_inputs(wildcards):
    """What rule train reads for model ``wildcards.model``."""
    return prepared_inputs(RESOLVED.model(wildcards.model)["adversarial"])


# each sample's parts (rules convert and gather), its listing awaited where it has remote globs
PARTS = SampleParts(
    lambda sample: contract(RESOLVED, "convert", sample=sample),
    lambda sample: checkpoints.list_files.get(sample=sample),
)


@functools.cache
def convert_part_digest(sample):
    """Rule convert's params entry, once per sample (not once per part): the hash of what a
    part job reads (all of the convert contract but max_failed_fraction, the gather's)."""
    return part_digest(RESOLVED, sample)


# hyperparameter studies (config tune:), rules tune_trial and tune_best
TUNE = RESOLVED.studies


def tune_trial_inputs(wildcards):
    """The base model's training inputs; trial i waits for trial i - n_parallel."""
    name, job = wildcards.study, int(wildcards.trial)
    study = TUNE[name]
    inputs = prepared_inputs(study["model"]["adversarial"])
    if job >= study["n_parallel"]:
        inputs["previous"] = paths.fill(paths.TRIAL, study=name, trial=job - study["n_parallel"])
    return inputs
