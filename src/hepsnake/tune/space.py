"""A study's search space as Optuna samples it (the dotted keys are applied to a model config by
:func:`hepsnake.config.loading.apply_params`)."""

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hepsnake.config.contracts import Distribution

PRIMITIVE = (str, int, float, bool, type(None))  # what Optuna stores as a categorical choice


def encoded(choices: list[Any]) -> list[Any]:
    """Categorical choices as Optuna stores them: lists and mappings as JSON text."""
    return [c if isinstance(c, PRIMITIVE) else json.dumps(c) for c in choices]


def suggest(trial: Any, space: Mapping[str, "Distribution"]) -> dict[str, Any]:
    """The parameters ``trial`` (an ``optuna.Trial``) samples from ``space``, decoded."""
    params = {}
    for key, dist in space.items():
        if dist.type == "categorical":
            choices = list(dist.choices or ())
            options = encoded(choices)
            picked = trial.suggest_categorical(key, options)
            params[key] = choices[options.index(picked)]
        elif dist.type == "int":
            step = int(dist.step or 1)
            params[key] = trial.suggest_int(
                key, int(dist.low), int(dist.high), step=step, log=bool(dist.log)
            )
        else:
            params[key] = trial.suggest_float(
                key, dist.low, dist.high, step=dist.step, log=bool(dist.log)
            )
    return params


def decode(space: Mapping[str, "Distribution"], stored: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's stored parameters as model-config values (JSON choices parsed)."""
    out = {}
    for key, value in stored.items():
        dist = space[key]
        if dist.type == "categorical":
            choices = list(dist.choices or ())
            value = choices[encoded(choices).index(value)]
        out[key] = value
    return out
