"""Load and validate the workflow config; cut it into the slice each stage needs."""

import copy
import csv
import functools
import glob
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from hepsnake.errors import HepsnakeError

SCHEMA = Path(__file__).with_name("config.schema.yaml")
MODEL_SCHEMA = Path(__file__).with_name("model.schema.yaml")
SAMPLE_COLUMNS = ("name", "files", "reader", "tree", "role", "label", "params", "xsec")
REMOTE_PREFIXES = ("root://", "s3://", "http://", "https://", "xroot://")
MASS = "mS"  # the sample parameter that evaluation treats as the signal mass


def filling_validator(schema: dict[str, Any]) -> Any:
    """A JSON-schema validator that also fills in each property's ``default``."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(
        validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Any:
        if validator.is_type(instance, "object"):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, properties, instance, schema)

    filling = validators.extend(Draft202012Validator, {"properties": properties_with_defaults})
    return filling(schema)


@functools.cache
def schema_validator(schema_path: Path) -> Any:
    """The filling validator of a schema file, parsed once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return filling_validator(yaml.load(schema_path.read_text(), Loader=loader))


def check_schema(data: dict[str, Any], schema_path: Path, where: str) -> None:
    """Validate ``data``, filling defaults in place; the first error names the key."""
    from jsonschema.exceptions import best_match

    error = best_match(schema_validator(schema_path).iter_errors(data))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path)
        raise HepsnakeError(f"{where}: {path or '<top>'}", error.message.splitlines()[0])


def load_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The validated model config ``model_dir/<name>.yaml`` with ``training_overrides`` applied."""
    path = Path(config["model_dir"]) / f"{name}.yaml"
    if not path.is_file():
        raise HepsnakeError(str(path), f"model config for '{name}' not found")
    model = yaml.safe_load(path.read_text()) or {}
    model.setdefault("training", {}).update(config.get("training_overrides", {}))
    check_schema(model, MODEL_SCHEMA, str(path))
    return model


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Validate against the JSON schema (filling defaults) and normalise the sample list, in place.

    An unknown or mistyped key raises HepsnakeError naming the key.
    """
    check_schema(config, SCHEMA, "config")
    config["samples"] = load_samples(config["samples"])
    names = [s["name"] for s in config["samples"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise HepsnakeError("config: samples", f"duplicate sample name '{dupes[0]}'")
    for sample in config["samples"]:
        check_sample(config, sample)
    check_prepare(config)
    from hepsnake.io.remote import refuse_credentials  # these modules import this one
    from hepsnake.prepare.duplicates import refuse_duplicate_files

    refuse_credentials(config)
    refuse_duplicate_files(config)
    return config


def check_prepare(config: dict[str, Any]) -> None:
    """Cross-field checks of ``prepare`` (needs ``class_names``); also run by the split job.

    The fractions cover train, val and test and sum to 1; the reweighting target is a class;
    resampling replaces kinematic reweighting and class balancing, so it excludes them.
    """
    prep = config["prepare"]
    fractions = prep["fractions"]
    if set(fractions) != {"train", "val", "test"}:
        raise HepsnakeError("config: prepare/fractions", "needs exactly train, val and test")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        raise HepsnakeError("config: prepare/fractions", f"sum to {total:g}, not 1")
    weights = prep["weights"]
    if weights["mode"] != "none" and weights["target"] not in config["class_names"]:
        raise HepsnakeError(
            "config: prepare/weights/target",
            f"'{weights['target']}' is not one of class_names {config['class_names']}",
        )
    if prep["resample"] != "none" and (weights["mode"] != "none" or weights["balance_classes"]):
        raise HepsnakeError(
            "config: prepare/resample",
            f"'{prep['resample']}' resampling replaces the weights: set weights.mode: none"
            " and weights.balance_classes: false",
        )


def load(source: str) -> dict[str, Any]:
    """A config from a YAML file path (validated) or an inline JSON stage slice (trusted).

    Relative paths inside the config (sample sheet, files) are relative to the working
    directory, as in Snakemake.
    """
    if source.lstrip().startswith("{"):
        return json.loads(source)
    path = Path(source)
    if not path.is_file():
        raise HepsnakeError(source, "config file not found")
    with path.open() as fh:
        config = yaml.safe_load(fh) or {}
    return validate(config)


def parse_params(text: str) -> dict[str, float]:
    """``"mS=16;ctau=1"`` → ``{"mS": 16.0, "ctau": 1.0}``."""
    params = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise HepsnakeError("samples: params", f"'{item}' is not NAME=NUMBER")
    return params


def load_samples(samples: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample list from the config list or a TSV sample sheet, with uniform keys."""
    if isinstance(samples, str):
        path = Path(samples)
        if not path.is_file():
            raise HepsnakeError(samples, "sample sheet not found")
        with path.open(newline="") as fh:
            rows = [
                {k: v for k, v in row.items() if v not in (None, "")}
                for row in csv.DictReader(
                    (line for line in fh if not line.startswith("#")), delimiter="\t"
                )
            ]
        for row in rows:
            unknown = set(row) - set(SAMPLE_COLUMNS)
            if unknown:
                raise HepsnakeError(samples, f"unknown column '{sorted(unknown)[0]}'")
            if "files" in row:
                row["files"] = row["files"].replace(",", " ").split()
            if "xsec" in row:
                row["xsec"] = float(row["xsec"])
        samples = rows
    out = []
    for row in samples:
        sample = dict(row)
        if isinstance(sample.get("files"), str):
            sample["files"] = sample["files"].split()
        if isinstance(sample.get("params"), str):
            sample["params"] = parse_params(sample["params"])
        sample.setdefault("params", {})
        sample.setdefault("xsec", 1.0)
        sample.setdefault("role", "train")
        out.append(sample)
    return out


def check_sample(config: dict[str, Any], sample: dict[str, Any]) -> None:
    """Cross-field checks the schema cannot express."""
    where = f"config: samples: {sample.get('name', '?')}"
    for key in ("name", "files", "reader"):
        if not sample.get(key):
            raise HepsnakeError(where, f"missing '{key}'")
    if sample["reader"] not in config["readers"]:
        raise HepsnakeError(where, f"unknown reader '{sample['reader']}'")
    label = sample.get("label")
    if sample["role"] == "control":
        if label not in ("data", "mc"):
            raise HepsnakeError(where, "a control sample needs label 'data' or 'mc'")
    elif label is not None and label not in config["class_names"]:
        raise HepsnakeError(where, f"label '{label}' is not one of class_names")


def samples_with_role(config: dict[str, Any], *roles: str) -> list[str]:
    """Names of the samples whose role is one of ``roles``."""
    return [s["name"] for s in config["samples"] if s["role"] in roles]


def sample_by_name(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The sample called ``name``."""
    for sample in config["samples"]:
        if sample["name"] == name:
            return sample
    raise HepsnakeError("config: samples", f"no sample named '{name}'")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL read through XRootD/fsspec rather than a local file."""
    return path.startswith(REMOTE_PREFIXES)


def expand_files(sample: dict[str, Any]) -> list[str]:
    """Local globs expanded (sorted); a pattern matching nothing is an error.

    URLs are kept as given: nothing here touches the network, so Snakemake builds its DAG
    offline; the convert job lists remote globs (:func:`hepsnake.io.listing.expand_urls`).
    """
    files: list[str] = []
    for pattern in sample["files"]:
        if is_remote(pattern) or not glob.has_magic(pattern):
            files.append(pattern)
            continue
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise HepsnakeError(pattern, f"no file matches (sample '{sample['name']}')")
        files.extend(matched)
    return files


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (16 hex digits) of the whole validated config and every listed model's config."""
    models = {m: load_model(config, m) for m in config.get("models", [])}
    text = json.dumps({"config": config, "models": models}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stage_config(config: dict[str, Any], stage: str, **wildcards: str) -> str:
    """The JSON slice of ``config`` that ``stage`` reads, passed as a rule param.

    Snakemake reruns a job when its params change, so each job sees only the keys it uses:
    changing one model's hyperparameters does not rerun the conversion.
    """
    if stage == "simulate":
        part = {"simulate": {**config["simulate"], "samples": None}}
        part["simulate"]["samples"] = {
            wildcards["toy"]: config["simulate"]["samples"][wildcards["toy"]]
        }
    elif stage == "convert":
        sample = sample_by_name(config, wildcards["sample"])
        part = {
            "class_names": config["class_names"],
            "samples": [sample],
            "readers": {sample["reader"]: config["readers"][sample["reader"]]},
            "convert": config["convert"],
        }
    elif stage == "split":
        part = {
            "class_names": config["class_names"],
            "samples": [
                {k: s[k] for k in ("name", "role", "label") if k in s} for s in config["samples"]
            ],
            "prepare": config["prepare"],
        }
    elif stage == "norm":
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            "prepare": {"std_floor": config["prepare"]["std_floor"]},
        }
    elif stage == "train":
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            "model_name": wildcards["model"],
            # 'export' concerns rule export only: changing it must not retrain
            "model": {
                k: v for k, v in load_model(config, wildcards["model"]).items() if k != "export"
            },
        }
    elif stage == "report":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "simulate": {"masses": config.get("simulate", {}).get("masses", {})},
            "config_hash": config_hash(config),
        }
    elif stage == "export":
        part = {"evaluate": {"signal": config["evaluate"]["signal"]}, "export": config["export"]}
    elif stage == "evaluate":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "simulate": {"masses": config.get("simulate", {}).get("masses", {})},
        }
    else:
        raise HepsnakeError("stage", f"unknown stage '{stage}'")
    return json.dumps(part, sort_keys=True)
