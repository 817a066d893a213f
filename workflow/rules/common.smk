# Config validation and the input functions the rules share; the logic lives in hepsnake.config.
from hepsnake.config import expand_files, is_remote, stage_config, validate
from snakemake.utils import validate as validate_schema

validate_schema(config, "../schemas/config.schema.yaml")
validate(config)

SAMPLES = [s["name"] for s in config["samples"]]
TOYS = list(config.get("simulate", {}).get("samples", {}))


def sample_files(wildcards):
    """The local input files of a sample (URLs are read inside the job)."""
    sample = next(s for s in config["samples"] if s["name"] == wildcards.sample)
    return [f for f in expand_files(sample) if not is_remote(f)]
