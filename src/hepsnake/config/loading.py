"""Read the config: YAML files, ``extends``, validation (defaults filled, cross-field checks),
model files and tune files."""

import copy
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hepsnake.config.checks import (
    check_evaluate,
    check_parameters,
    check_prepare,
    check_sample,
    refuse_credentials,
    refuse_duplicate_files,
    refuse_url_secret,
)
from hepsnake.config.samples import sample_by_name, sample_rows
from hepsnake.config.schema import (
    MODEL_SCHEMA,
    SCHEMA,
    TUNE_SCHEMA,
    Origin,
    check_schema,
    filling_validator,
    schema_validator,
)
from hepsnake.errors import HepsnakeError
from hepsnake.io.expressions import check as check_expression
from hepsnake.paths import TUNED_PREFIX, best_path
from hepsnake.prepare.guard import check_inputs


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML file; a missing file or a syntax error names the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise HepsnakeError(str(path), "file not found")
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        at = f": line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        why = exc.problem or exc.context
        if exc.problem and context and exc.context:
            why += f" ({exc.context} at line {context.line + 1})"
        raise HepsnakeError(f"{path}{at}", f"not valid YAML: {why}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HepsnakeError(str(path), f"not valid YAML: {exc}") from None


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping of config keys (empty: ``{}``)."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise HepsnakeError(str(path), "not a mapping of config keys")
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` (mappings key by key; lists and values replaced)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out


def resolve_extends(config: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """``config`` deep-merged onto the file its ``extends`` names (relative to the working
    directory), whose own ``extends`` is followed in turn; the extending file wins.

    The files read are added to ``origin``, first.
    """
    seen: list[Path] = []
    while "extends" in config:
        config = dict(config)
        base_path = config.pop("extends")
        extends = schema_validator(SCHEMA, "properties/extends", fill=False)
        check_schema(base_path, extends, origin.where, ("extends",))
        if Path(base_path).resolve() in seen:
            raise HepsnakeError(origin.where("extends"), f"'{base_path}' extends itself (a cycle)")
        seen.append(Path(base_path).resolve())
        base = read_mapping(base_path)
        origin.layers.insert(0, (base_path, copy.deepcopy(base)))
        config = merge(base, config)
    return config


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def workflow_config(config: dict[str, Any], configfiles: Sequence[str | Path]) -> dict[str, Any]:
    """Snakemake's ``config`` (``configfiles`` merged by Snakemake) made the validated config,
    in place: ``extends`` applied, defaults filled, every listed model checked."""
    origin = Origin([(display_path(f), read_mapping(f)) for f in configfiles])
    resolved = validate(resolve_extends(copy.deepcopy(config), origin), origin)
    for name in resolved["models"]:
        load_model(resolved, name)
    for study in resolved["tune"]:
        load_tune(resolved, study, origin)
    config.clear()
    config.update(resolved)
    return config


def model_path(config: dict[str, Any], name: str) -> Path:
    """The file of model ``name``: ``model_dir/<name>.yaml``, or for ``tune.<study>`` the
    study's best trial, ``results/tune/<study>/best.yaml``."""
    if name.startswith(TUNED_PREFIX):
        return best_path(name.removeprefix(TUNED_PREFIX))
    return Path(config["model_dir"]) / f"{name}.yaml"


def read_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Model ``name``'s config file as written (no defaults, no overrides)."""
    path = model_path(config, name)
    if not path.is_file():
        hint = f" (`snakemake {path}` makes it)" if name.startswith(TUNED_PREFIX) else ""
        raise HepsnakeError(str(path), f"model config for '{name}' not found{hint}")
    return read_mapping(path)


def load_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The validated model config of ``name`` (:func:`model_path`) with ``training_overrides``
    applied (checked with the config: an override's error names the config, not the model
    file)."""
    path = model_path(config, name)
    model = read_model(config, name)
    origin = Origin([(str(path), model)])
    check_schema(model, schema_validator(MODEL_SCHEMA), origin.where)
    model["training"].update(config["training_overrides"])
    check_schema(model, schema_validator(MODEL_SCHEMA), origin.where)
    check_components(model["model"], origin)
    return model


def check_components(model: dict[str, Any], origin: Origin) -> None:
    """Validate each registered component's block against its own schema (unknown options
    rejected, defaults filled); one ``jet_classification`` among uniquely named tasks."""
    from hepsnake.models.registry import lookup

    blocks = [
        (("model", kind), kind, model[kind]) for kind in ("encoder", "pooling") if kind in model
    ]
    blocks += [(("model", "tasks", i), "task", t) for i, t in enumerate(model["tasks"])]
    for path, kind, block in blocks:
        component = lookup(kind, block["type"], origin.where(*path, "type"))
        check_schema(block, filling_validator(component.schema()), origin.where, path)
    kinds = [t["type"] for t in model["tasks"]]
    if kinds.count("jet_classification") != 1:
        raise HepsnakeError(
            origin.where("model", "tasks"), "needs exactly one jet_classification task"
        )
    names = [t.setdefault("name", t["type"]) for t in model["tasks"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HepsnakeError(origin.where("model", "tasks"), f"task name {twice[0]!r} used twice")


def load_tune(config: dict[str, Any], study: str, origin: Origin | None = None) -> dict[str, Any]:
    """Study ``study`` of ``config['tune']``: its tune file validated (defaults filled) and
    merged with the config's settings, ``model`` the base model (:func:`load_model`).

    Every range's ends (and every choice) applied to the base model must give a valid model
    config: a bad key or value names the tune file's ``space`` entry.
    """
    from hepsnake.tune.space import apply_params, space_corners

    settings = config["tune"][study]
    path = settings["file"]
    spec = read_mapping(path)
    where = Origin([(path, spec)]).where
    check_schema(spec, schema_validator(TUNE_SCHEMA), where)
    for key, dist in spec["space"].items():
        if dist["type"] != "categorical" and not dist["low"] <= dist["high"]:
            raise HepsnakeError(where("space", key), "low is above high")
        if dist["type"] != "categorical" and dist["log"] and dist["low"] <= 0:
            raise HepsnakeError(where("space", key), "a log range needs low > 0")
    if spec["base_model"].startswith("tune."):
        raise HepsnakeError(where("base_model"), "a study starts from a model of model_dir")
    try:
        model = load_model(config, spec["base_model"])
    except HepsnakeError as exc:
        raise HepsnakeError(where("base_model"), str(exc)) from None
    for key, params in space_corners(spec["space"]):
        trial = apply_params(model, params, where("space", key))
        check_schema(trial, schema_validator(MODEL_SCHEMA), functools.partial(where, "space", key))
        try:
            check_components(trial["model"], Origin())
        except HepsnakeError as exc:
            raise HepsnakeError(where("space", key), str(exc)) from None
    refuse_url_secret(settings["storage"], (origin or Origin()).where("tune", study, "storage"))
    return {"name": study, **settings, **spec, "model": model}


def validate(config: dict[str, Any], origin: Origin | None = None) -> dict[str, Any]:
    """Validate against the JSON schema (filling defaults) and normalise the sample list, in
    place. An unknown or mistyped key raises HepsnakeError naming the file (from ``origin``)
    and the key."""
    origin = origin or Origin()
    check_schema(config, schema_validator(SCHEMA), origin.where)
    check_schema(
        config["training_overrides"],
        schema_validator(MODEL_SCHEMA, "properties/training", fill=False),
        origin.where,
        ("training_overrides",),
    )
    rows = sample_rows(config["samples"], origin)
    config["samples"] = [sample for sample, _ in rows]
    for sample, where in rows:
        check_sample(config, sample, where)
    for i, cut in enumerate(config["convert"]["cuts"]):
        check_expression(cut, origin.where("convert", "cuts", i))
    check_prepare(config, origin)
    label_map = config["prepare"].get("label_map")
    check_inputs(config["inputs"], label_map and label_map["variable"], origin.where)
    check_parameters(config, origin)
    check_evaluate(config, origin)
    refuse_credentials(config)
    refuse_duplicate_files(config)
    mlflow = config["tracking"]["mlflow"]
    refuse_url_secret(mlflow and mlflow["uri"], origin.where("tracking", "mlflow", "uri"))
    return config


def load(source: str) -> dict[str, Any]:
    """A config from a YAML file path (``extends`` applied, validated) or an inline JSON stage
    slice (trusted).

    Relative paths inside the config (``extends``, sample sheet, files) are relative to the
    working directory, as in Snakemake.
    """
    if source.lstrip().startswith("{"):
        return json.loads(source)
    config = read_mapping(source)
    origin = Origin([(source, config)])
    return validate(resolve_extends(config, origin), origin)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (16 hex digits) of the whole validated config and every listed model's config."""
    models = {m: load_model(config, m) for m in config["models"]}
    text = json.dumps({"config": config, "models": models}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scan_parameters(config: dict[str, Any], model: str) -> dict[str, Any]:
    """The parameters evaluation scans for ``model`` and their training values: a
    parameterised model's ``parameters.names``/``train``; else the ``params`` of the signal
    samples (values of the ``train``-role ones)."""
    parameters = load_model(config, model).get("parameters")
    if parameters:
        train = parameters["train"]
        return {
            "names": list(parameters["names"]),
            "train": {n: sorted(float(v) for v in train[n]) for n in parameters["names"]},
        }
    signal = [
        s
        for s in config["samples"]
        if s.get("label") == config["evaluate"]["signal"] and s["role"] in ("train", "test")
    ]
    names = list(dict.fromkeys(n for s in signal for n in s["params"]))
    trained = [s["params"] for s in signal if s["role"] == "train"]
    return {
        "names": names,
        "train": {n: sorted({float(p[n]) for p in trained if n in p}) for n in names},
    }


# a study's keys no trial job reads (changing them reruns no trial)
TUNE_DAG_KEYS = ("n_trials", "n_parallel", "file", "description")


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
            # the transformed inputs are written by the split (not the variable lists)
            "inputs": {k: config["inputs"][k] for k in ("transforms", "input_map")},
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
        if config["tracking"]["loggers"]:  # absent when off: turning it on retrains, not before
            part["tracking"] = {"loggers": config["tracking"]["loggers"]}
    elif stage in ("tune", "tune_best"):
        study = load_tune(config, wildcards["study"])
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            # n_trials and n_parallel shape the DAG only: more trials must not rerun the others
            "study": {k: v for k, v in study.items() if k not in TUNE_DAG_KEYS},
        }
        part["study"]["model"] = {k: v for k, v in study["model"].items() if k != "export"}
        if stage == "tune_best":
            part["study"]["n_trials"] = study["n_trials"]
            part["model_file"] = read_model(config, study["base_model"])
            if config["tracking"]["mlflow"]:
                part["tracking"] = {"mlflow": config["tracking"]["mlflow"]}
        elif config["tracking"]["loggers"]:
            part["tracking"] = {"loggers": config["tracking"]["loggers"]}
    elif stage == "track":
        part = {"tracking": config["tracking"]}
    elif stage == "report":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "parameters": {m: scan_parameters(config, m) for m in config["models"]},
            "config_hash": config_hash(config),
        }
    elif stage == "export":
        part = {"evaluate": {"signal": config["evaluate"]["signal"]}, "export": config["export"]}
    elif stage == "evaluate":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "parameters": scan_parameters(config, wildcards["model"]),
            "tasks": load_model(config, wildcards["model"])["model"]["tasks"],
        }
    else:
        raise HepsnakeError("stage", f"unknown stage '{stage}'")
    return json.dumps(part, sort_keys=True)
