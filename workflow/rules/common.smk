# Config validation and the input functions the rules share; the logic lives in hepsnake.config.
import sys
from types import SimpleNamespace

from hepsnake.config import (
    expand_files,
    is_remote,
    load_model,
    load_tune,
    sample_by_name,
    samples_with_role,
    stage_config,
    workflow_config,
)
from hepsnake.convert.preflight import preflight
from hepsnake.errors import HepsnakeError

# the checks and the one error line of the hepsnake command: file, key path, what is allowed;
# then the inputs, branches and cuts against the readers and each sample's first file (once,
# in the process that builds the DAG, not again in each batch job)
try:
    workflow_config(config, workflow.configfiles)
    if workflow.is_main_process:
        preflight(config)
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


def sample_files(wildcards):
    """The local input files of a sample (URLs are read inside the job)."""
    sample = sample_by_name(config, wildcards.sample)
    return [f for f in expand_files(sample) if not is_remote(f)]


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
