"""Read the config: YAML files, ``extends``, validation (defaults filled, cross-field checks),
model files and tune files."""

import copy
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hepsnake.config.checks import (
    check_evaluate,
    check_inputs,
    check_parameters,
    check_prepare,
    check_sample,
    refuse_credentials,
    refuse_duplicate_files,
    refuse_url_secret,
)
from hepsnake.config.samples import sample_rows
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
    model = read_model(config, name)
    return validate_model(config, model, Origin([(str(model_path(config, name)), model)]))


def validate_model(config: dict[str, Any], model: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """``model`` (a model config's data, read from ``origin``) validated in place: defaults
    filled, the config's ``training_overrides`` applied and checked, its components checked."""
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
    """The validated config of a YAML file (``extends`` applied, defaults filled).

    Relative paths inside the config (``extends``, sample sheet, files) are relative to the
    working directory, as in Snakemake.
    """
    config = read_mapping(source)
    origin = Origin([(source, config)])
    return validate(resolve_extends(config, origin), origin)


def with_params(model: dict[str, Any], params: dict[str, Any], where: str) -> dict[str, Any]:
    """A validated model config (its data) with each dotted key of ``params`` set (a tuning
    trial's values); an invalid result names ``where``."""
    trial = apply_params(model, params, where)
    check_schema(trial, schema_validator(MODEL_SCHEMA), lambda *_: where)
    try:
        check_components(trial["model"], Origin())
    except HepsnakeError as exc:
        raise HepsnakeError(where, str(exc)) from None
    return trial


def best_model_file(
    base: dict[str, Any], params: dict[str, Any], description: str, where: str
) -> dict[str, Any]:
    """A study's best.yaml: the base model's file as written with the best trial's
    ``params`` set and its ``description``; checked against the model schema."""
    model = apply_params(base, params, where)
    model["description"] = description
    check_schema(model, schema_validator(MODEL_SCHEMA, fill=False), lambda *_: where)
    return model


def apply_params(model: dict[str, Any], params: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``model`` with each dotted key of ``params`` (``training.lr``) set.

    Missing mappings below a block are created; the block itself (``model``, ``training``,
    ``adversarial``) must exist, so a study never switches adversarial training on.
    """
    out = copy.deepcopy(model)
    for key, value in params.items():
        block, *inner, last = key.split(".")
        node = out.get(block)
        if not isinstance(node, dict):
            raise HepsnakeError(where, f"the base model has no '{block}' block for '{key}'")
        for part in inner:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HepsnakeError(where, f"'{part}' of '{key}' is not a mapping in the model")
        node[last] = copy.deepcopy(value)
    return out


def space_corners(space: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each key with each end of its range (or each choice): the values validation checks."""
    for key, dist in space.items():
        values = dist["choices"] if dist["type"] == "categorical" else [dist["low"], dist["high"]]
        for value in values:
            yield key, {key: int(value) if dist["type"] == "int" else value}
