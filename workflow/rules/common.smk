# Config validation and the input functions the rules share; the logic lives in hepsnake.config.
import functools
import sys
from types import SimpleNamespace

from hepsnake import paths
from hepsnake.config import (
    load_model,
    load_tune,
    samples_with_role,
    stage_config,
    workflow_config,
)
from hepsnake.convert.dag import SampleParts
from hepsnake.errors import HepsnakeError

# the checks and the one error line of the hepsnake command: file, key path, what is allowed
try:
    workflow_config(config, workflow.configfiles)
except HepsnakeError as exc:
    sys.exit(f"hepsnake: error: {exc}")

SAMPLES = [s["name"] for s in config["samples"]]
MAIN_SAMPLES = samples_with_role(config, "train", "test")
CONTROL_SAMPLES = samples_with_role(config, "control")
# signal samples with parameters (e.g. a mass): per-parameter evaluation plots
SIGNAL_PARAM_SAMPLES = [
    s["name"]
    for s in config["samples"]
    if s["name"] in MAIN_SAMPLES
    and s.get("label") == config["evaluate"].get("signal")
    and s["params"]
]
TOYS = list(config.get("simulate", {}).get("samples", {}))
SPLITS = ["train", "val", "test"]
MODELS = list(config["models"])
EXPORTED = [m for m in MODELS if load_model(config, m)["export"]]


def train_inputs(wildcards):
    """Prepared splits and dicts; adversarial models also read the control region."""
    inputs = {
        split: f"results/prepared/{split}.h5" for split in ("train", "val")
    } | {"norm": "results/prepared/norm_dict.yaml", "class_dict": "results/prepared/class_dict.yaml"}
    if load_model(config, wildcards.model).get("adversarial"):
        inputs |= {f"control_{s}": f"results/prepared/control_{s}.h5" for s in ("train", "val")}
    return inputs


# each sample's parts (rules convert and gather), its listing awaited where it has remote globs
PARTS = SampleParts(config, lambda sample: checkpoints.list_files.get(sample=sample))


@functools.cache
def convert_config(sample, stage):
    """The convert (a part) or gather slice of ``sample``, made once per sample."""
    return stage_config(config, stage, sample=sample)


# hyperparameter studies (config tune:), rules tune_trial and tune_best
TUNE = {name: load_tune(config, name) for name in config["tune"]}


def tune_trial_inputs(wildcards):
    """The base model's training inputs; trial i waits for trial i - n_parallel."""
    name, job = wildcards.study, int(wildcards.trial)
    study = TUNE[name]
    inputs = train_inputs(SimpleNamespace(model=study["base_model"]))
    if job >= study["n_parallel"]:
        inputs["previous"] = f"results/tune/{name}/trials/{job - study['n_parallel']}.json"
    return inputs
