"""The schema files, their validators (which fill in defaults) and the one formatter of their
errors: file, key path, what is allowed."""

import copy
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from hepsnake.errors import HepsnakeError

# symlinks into workflow/schemas (copied as real files into a wheel)
SCHEMA = Path(__file__).with_name("config.schema.yaml")
MODEL_SCHEMA = Path(__file__).with_name("model.schema.yaml")
TUNE_SCHEMA = Path(__file__).with_name("tune.schema.yaml")
UNNAMED = "config"  # names a config no file holds (a dict built in code)

Where = Callable[..., str]  # key path → the "FILE: key/path" of an error line


class Origin:
    """The files merged into one config, lowest precedence first: names the file of an error."""

    def __init__(self, layers: Sequence[tuple[str, Any]] = ()) -> None:
        self.layers = [(name, copy.deepcopy(data)) for name, data in layers]

    def file(self, path: Sequence[str | int]) -> str:
        """The last file that sets the longest prefix of ``path`` (``config`` without files)."""
        best, depth = UNNAMED, -1
        for name, data in self.layers:
            d = prefix_depth(data, path)
            if d >= depth:
                best, depth = name, d
        return best

    def where(self, *path: str | int) -> str:
        """``FILE: key/path``, the ``where`` of a :class:`HepsnakeError`."""
        return f"{self.file(path)}: {'/'.join(str(p) for p in path) or '<top>'}"


def prefix_depth(data: Any, path: Sequence[str | int]) -> int:
    """How many leading keys of ``path`` exist in the nested ``data``."""
    for depth, key in enumerate(path):
        found = (
            key in data
            if isinstance(data, dict)
            else (isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data))
        )
        if not found:
            return depth
        data = data[key]
    return len(path)


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
def schema_document(schema_path: Path) -> dict[str, Any]:
    """A schema file, parsed once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(schema_path.read_text(), Loader=loader)


@functools.cache
def schema_validator(schema_path: Path, part: str = "", fill: bool = True) -> Any:
    """The validator of a schema file, or of its part at the slash path ``part``
    (``$defs/sample``); ``fill`` fills in defaults."""
    schema = schema_document(schema_path)
    if part:
        sub = functools.reduce(lambda node, key: node[key], part.split("/"), schema)
        schema = {**sub, "$defs": schema.get("$defs", {})}
    if fill:
        return filling_validator(schema)
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def schema_error(error: Any, where: Where, prefix: Sequence[str | int] = ()) -> HepsnakeError:
    """One error line for a JSON-schema error: the file, the key path and what is allowed.

    The one formatter of schema errors, for Snakemake runs and the ``hepsnake`` command alike.
    """
    path = [*prefix, *error.absolute_path]
    value = error.validator_value
    if error.validator == "required":
        missing = next(k for k in value if k not in error.instance)
        return HepsnakeError(where(*path, missing), "required key is missing")
    if error.validator == "additionalProperties" and value is False:
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))[0]
        return HepsnakeError(
            where(*path, extra), f"'{extra}' was unexpected (allowed keys: {', '.join(allowed)})"
        )
    if (
        error.validator == "pattern"
        and value == schema_document(SCHEMA)["$defs"]["name"]["pattern"]
    ):
        return HepsnakeError(
            where(*path),
            f"{error.instance!r} is not a valid name: letters, digits, '_', '.' and '-' only,"
            " starting with a letter or digit",
        )
    return HepsnakeError(where(*path), error.message.splitlines()[0])


def check_schema(data: Any, validator: Any, where: Where, prefix: Sequence[str | int] = ()) -> None:
    """Validate ``data`` (filling defaults if ``validator`` does); raise the best error.

    Errors under an ``if``'s ``then``/``else`` count only when no other error exists: with a
    wrong discriminator (a reader ``type: flatt``) the discriminator's error is the cause.
    """
    from jsonschema.exceptions import best_match

    errors = list(validator.iter_errors(data))
    plain = [e for e in errors if not {"then", "else"} & set(e.schema_path)]
    error = best_match(plain or errors)
    if error is not None:
        raise schema_error(error, where, prefix)
