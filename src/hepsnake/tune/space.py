"""A study's search space: dotted model-config keys, their Optuna distributions."""

import copy
import json
from collections.abc import Iterator
from typing import Any

from hepsnake.errors import HepsnakeError

PRIMITIVE = (str, int, float, bool, type(None))  # what Optuna stores as a categorical choice


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


def encoded(choices: list[Any]) -> list[Any]:
    """Categorical choices as Optuna stores them: lists and mappings as JSON text."""
    return [c if isinstance(c, PRIMITIVE) else json.dumps(c) for c in choices]


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``trial`` (an ``optuna.Trial``) samples from ``space``, decoded."""
    params = {}
    for key, dist in space.items():
        kind = dist["type"]
        if kind == "categorical":
            options = encoded(dist["choices"])
            picked = trial.suggest_categorical(key, options)
            params[key] = dist["choices"][options.index(picked)]
        elif kind == "int":
            step = int(dist.get("step", 1))
            params[key] = trial.suggest_int(
                key, int(dist["low"]), int(dist["high"]), step=step, log=dist["log"]
            )
        else:
            params[key] = trial.suggest_float(
                key, dist["low"], dist["high"], step=dist.get("step"), log=dist["log"]
            )
    return params


def decode(space: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's stored parameters as model-config values (JSON choices parsed)."""
    out = {}
    for key, value in stored.items():
        dist = space[key]
        if dist["type"] == "categorical":
            value = dist["choices"][encoded(dist["choices"]).index(value)]
        out[key] = value
    return out
