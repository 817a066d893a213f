"""One registry of model components: encoders, poolings and tasks.

Each entry names its class (``module:Class``, imported only when a model is built, so a DAG
is checked without importing torch) and the JSON schema of its options: a component's
config block is validated against it when the model YAML is loaded (unknown options
rejected, defaults filled), and the class is built from the validated options as keyword
arguments. A new component is one file holding its class plus one entry here (or one
:func:`register` call).
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hepsnake.errors import HepsnakeError

if TYPE_CHECKING:
    from hepsnake.config.contracts import Component as ComponentBlock

KINDS = ("encoder", "pooling", "task")

INT = {"type": "integer", "minimum": 1}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
WIDTHS = {"type": "array", "items": INT}
WEIGHT = {"type": "number", "minimum": 0, "default": 1.0}
NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"}


@dataclass(frozen=True)
class Component:
    """A registered component: its class (or ``module:Class`` path) and its options' schema."""

    target: Any
    options: Mapping[str, Any]
    required: tuple[str, ...] = ()

    def cls(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)

    def schema(self) -> dict[str, Any]:
        """Options as an object schema; ``type`` (the registry key) is always allowed."""
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {"type": {"type": "string"}, **self.options},
            "required": ["type", *self.required],
        }


REGISTRY: dict[str, dict[str, Component]] = {
    "encoder": {
        "deepsets": Component(
            "hepsnake.models.encoders:DeepSets",
            {"layers": INT | {"default": 2}, "dropout": FRACTION | {"default": 0.0}},
        ),
        "transformer": Component(
            "hepsnake.models.encoders:Transformer",
            {
                "layers": INT | {"default": 2},
                "heads": INT | {"default": 4},
                "dropout": FRACTION | {"default": 0.0},
                "gated": {"type": "boolean"},  # no default: older configs keep their hash
                "registers": {"type": "integer", "minimum": 0},  # no default, as gated
            },
        ),
        "lstm": Component(
            "hepsnake.models.encoders:LSTM",
            {
                "layers": INT | {"default": 1},
                "bidirectional": {"type": "boolean", "default": False},
            },
        ),
        "gatv2": Component(
            "hepsnake.models.encoders:GATv2",
            {"layers": INT | {"default": 2}, "heads": INT | {"default": 4}},
        ),
        "edgeconv": Component(
            "hepsnake.models.edgeconv:EdgeConv",
            {
                "layers": INT | {"default": 2},
                "k": INT | {"default": 8},
                "aggregation": {"enum": ["max", "mean"], "default": "max"},
                "space": {
                    "oneOf": [
                        {"const": "embedding"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ],
                    "default": "embedding",
                },
            },
        ),
    },
    "pooling": {
        "sum": Component("hepsnake.models.pooling:SumPool", {}),
        "mean": Component("hepsnake.models.pooling:MeanPool", {}),
        "attention": Component("hepsnake.models.pooling:AttentionPool", {}),
        "cross_attention": Component(
            "hepsnake.models.pooling:CrossAttentionPool", {"heads": INT | {"default": 4}}
        ),
    },
    "task": {
        "jet_classification": Component(
            "hepsnake.models.tasks.jet_classification:JetClassification",
            {"name": NAME, "weight": WEIGHT, "hidden": WIDTHS, "dropout": FRACTION},
        ),
        "jet_regression": Component(
            "hepsnake.models.tasks.jet_regression:JetRegression",
            {
                "name": NAME,
                "target": {"type": "string"},
                "weight": WEIGHT,
                "mean": {"type": "number"},
                "std": {"type": "number", "exclusiveMinimum": 0},
                "hidden": WIDTHS,
            },
            required=("name", "target"),
        ),
        "constituent_classification": Component(
            "hepsnake.models.tasks.constituent_classification:ConstituentClassification",
            {
                "name": NAME,
                "collection": {"type": "string"},
                "label": {"type": "string"},
                "classes": {"type": "array", "items": NAME, "minItems": 2, "uniqueItems": True},
                "signal": {"type": "string"},
                "mixture": INT | {"default": 1},
                "bayes": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number"]},
                },
                "weight": WEIGHT,
                "hidden": WIDTHS,
            },
            required=("name", "collection", "label", "classes"),
        ),
        "edge_classification": Component(
            "hepsnake.models.tasks.edge_classification:EdgeClassification",
            {
                "name": NAME,
                "collection": {"type": "string"},
                "label": {"type": "string"},
                "weight": WEIGHT,
                "hidden": INT,
            },
            required=("name", "collection", "label"),
        ),
    },
}


def register(
    kind: str, name: str, target: Any, options: Mapping[str, Any], required: tuple[str, ...] = ()
) -> None:
    """Add (or replace) the ``kind`` component ``name``: a class or ``module:Class`` path,
    with the schema of each option (``required`` ones must be given)."""
    REGISTRY[kind][name] = Component(target, dict(options), tuple(required))


def lookup(kind: str, name: str, where: str) -> Component:
    """The ``kind`` component called ``name``; an unknown name is an error at ``where``."""
    known = REGISTRY[kind]
    if name not in known:
        raise HepsnakeError(where, f"unknown {kind} {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


def build(kind: str, block: "ComponentBlock", **context: Any) -> Any:
    """The component of a validated ``block`` (:class:`hepsnake.config.contracts.Component`),
    built with its options and ``context`` (e.g. the width ``dim``) as keyword arguments."""
    component = lookup(kind, block.type, kind)
    return component.cls()(**context, **dict(block.options))
