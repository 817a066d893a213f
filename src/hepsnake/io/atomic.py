"""Write-then-rename helpers: an output exists only once it is complete."""

import json
import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def finite_or_none(data: Any) -> Any:
    """``data`` with every non-finite float (inf, NaN) replaced by None, through dicts and lists."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_none(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite_or_none(v) for v in data]
    return data


def json_text(data: Any) -> str:
    """``data`` as indented standard JSON text: inf and NaN become null."""
    return json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as :func:`json_text`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data))


def write_yaml(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as block-style YAML, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
