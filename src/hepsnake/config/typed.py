"""Validated config data as frozen dataclasses, and back: the one converter of every contract.

:func:`build` turns validated data (schema defaults filled) into a dataclass, recursively by
the field types: a nested dataclass, ``X | None`` (a missing key is None), ``tuple[T, ...]``
(from a list), ``Mapping[str, T]`` (a read-only mapping), a union of dataclasses (the one
whose fields hold the keys), or a plain value. An unknown key, or a missing key that is not
optional, is a bug in a contract (the schema checked the data), so it raises ``TypeError``.
A dataclass may shape its data with ``from_data``/``to_data`` methods.
:func:`to_data` gives the plain data back (lists, dicts), so ``build(cls, to_data(x)) == x``.
"""

import dataclasses
import functools
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def optional(tp: Any) -> bool:
    return type(None) in typing.get_args(tp) and is_union(tp)


def is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def build(cls: type[T], data: Any) -> T:
    """The dataclass ``cls`` of ``data`` (a mapping of its fields)."""
    shape = getattr(cls, "from_data", None)
    if shape is not None:
        return shape(data)
    return build_fields(cls, data)


def build_fields(cls: type[T], data: Any) -> T:
    """:func:`build` by the field types alone, ``from_data`` left aside (what a
    ``from_data`` calls once it has reshaped its data)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {data!r}")
    types_ = field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    values = {}
    for name, tp in types_.items():
        if name in data:
            values[name] = convert(tp, data[name])
        elif optional(tp):
            values[name] = None
        else:
            raise TypeError(f"{cls.__name__}: missing key '{name}'")
    return cls(**values)


def convert(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp`` (see :func:`build`)."""
    if value is None and (tp is Any or optional(tp)):
        return None
    if is_union(tp):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(options) == 1:
            return convert(options[0], value)
        sequences = [t for t in options if typing.get_origin(t) is tuple]
        if sequences and isinstance(value, list | tuple):
            return convert(sequences[0], value)
        classes = [t for t in options if dataclasses.is_dataclass(t)]
        if classes and isinstance(value, Mapping):
            fits = [c for c in classes if set(value) <= set(field_types(c))]
            return build((fits or classes)[0], value)
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return tuple(convert(args[0], v) for v in value)
    if origin in (Mapping, dict, typing.Mapping):
        return types.MappingProxyType({k: convert(args[1], v) for k, v in value.items()})
    return value


def to_data(obj: Any) -> Any:
    """Plain data (dicts, lists, values) of a contract or of anything inside one. A field
    that may be absent (its default is None) is left out while it is None, as the config
    leaves it out: the data validates against the schema again."""
    shape = getattr(obj, "to_data", None)
    if shape is not None and dataclasses.is_dataclass(obj):
        return shape()
    if dataclasses.is_dataclass(obj):
        return {
            f.name: to_data(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.default is None and getattr(obj, f.name) is None)
        }
    if isinstance(obj, Mapping):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_data(v) for v in obj]
    return obj


def digest(obj: Any) -> str:
    """sha256 (16 hex digits) of a contract's data, mappings in their order (the order of
    output fields): what Snakemake's params compare."""
    text = json.dumps(to_data(obj), separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
