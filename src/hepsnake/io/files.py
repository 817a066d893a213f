"""Checked readers of the files one stage leaves for another (JSON, YAML, HDF5).

A file that another stage left empty, truncated or of the wrong kind (a crash elsewhere, a
copy gone wrong, a path mixed up) becomes one :class:`~hepsnake.errors.HepsnakeError` naming
the file and what is wrong with it, never a ``TypeError`` deep inside a stage. Each reader
takes ``kind``, what the file should be (e.g. ``"norm dict"``), for the message.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.atomic import write_errno

if TYPE_CHECKING:
    import h5py

RERUN = "rerun the stage that writes it"
TRAINING_METRICS_KIND = "training metrics.json"  # a kind several stages read


def a(kind: str) -> str:
    """``kind`` after its indefinite article: "a norm dict", "an evaluate metrics file"."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def require_file(path: str | Path, kind: str) -> Path:
    """``path`` as a Path, once it is known to be a non-empty regular file."""
    file = Path(path)
    if not file.exists():
        raise HepsnakeError(str(path), f"no such file (the {kind})")
    if not file.is_file():
        raise HepsnakeError(str(path), f"not a file (the {kind} is expected here)")
    if file.stat().st_size == 0:
        raise HepsnakeError(str(path), f"empty file (0 bytes), not {a(kind)}: {RERUN}")
    return file


def mapping(data: Any, path: str | Path, kind: str, keys: Sequence[str]) -> dict[str, Any]:
    """``data`` (a parsed file) once it is a mapping holding every one of ``keys``."""
    if not isinstance(data, dict):
        what = "nothing" if data is None else f"a {type(data).__name__}"
        raise HepsnakeError(str(path), f"not {a(kind)}: it holds {what}, not a mapping")
    missing = [k for k in keys if k not in data]
    if missing:
        raise HepsnakeError(str(path), f"not {a(kind)}: no key '{missing[0]}'")
    return data


def read_json(path: str | Path, kind: str, keys: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON mapping in ``path``, holding ``keys``."""
    text = require_file(path, kind).read_text(errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] in ("{", "[") and not text.rstrip().endswith(("}", "]")):
            lines = len(text.splitlines())
            raise HepsnakeError(
                str(path), f"truncated {kind} (its JSON stops at line {lines}): {RERUN}"
            ) from None
        where = f"line {exc.lineno} column {exc.colno}"
        raise HepsnakeError(str(path), f"not {a(kind)}: not JSON ({exc.msg} at {where})") from None
    return mapping(data, path, kind, keys)


def read_yaml(path: str | Path, kind: str, keys: Sequence[str] = ()) -> dict[str, Any]:
    """The YAML mapping in ``path``, holding ``keys``."""
    text = require_file(path, kind).read_text(errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise HepsnakeError(str(path), f"not {a(kind)}: not YAML ({problem}{where})") from None
    return mapping(data, path, kind, keys)


def h5_file(path: str | Path, kind: str) -> "h5py.File":
    """``path`` open for reading as HDF5 (the caller closes it)."""
    import h5py  # here: the readers of JSON and YAML serve the DAG's start-up, h5py does not

    require_file(path, kind)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        cause = first_line(exc).removeprefix("OSError: ")
        raise HepsnakeError(
            str(path), f"not a readable HDF5 file ({cause}); expected the {kind}"
        ) from None


@contextmanager
def open_h5(path: str | Path, kind: str, datasets: Sequence[str] = ()) -> Iterator["h5py.File"]:
    """:func:`h5_file` of ``path`` in a block, holding ``datasets``; a read that fails inside
    the block (a truncated file opens, then fails where its data is missing) names the file.
    Failed writes of other files inside the block are left as they are."""
    with h5_file(path, kind) as h5:
        missing = [d for d in datasets if d not in h5]
        if missing:
            raise HepsnakeError(str(path), f"not {a(kind)}: no dataset '{missing[0]}'")
        try:
            yield h5
        except (OSError, RuntimeError) as exc:
            if write_errno(exc) is not None:
                raise
            raise HepsnakeError(
                str(path), f"cannot read the {kind}: truncated or corrupt ({first_line(exc)})"
            ) from None
