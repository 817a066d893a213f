"""Write-then-rename helpers: an output exists only once it is complete.

Every temporary of an output lives in one folder beside it, ``.{name}.tmp.d/``, which the
next write of that output empties before it starts: a killed job (``kill -9``) leaves its
temporaries there, and its rerun removes them. A failed write (disk full, no permission)
becomes one :class:`~hepsnake.errors.HepsnakeError` naming the output, and leaves nothing.
"""

import errno
import json
import math
import os
import re
import shutil
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hepsnake.errors import HepsnakeError

# errno values of a failed write: the output's fault, not an input's
WRITE_ERRNOS = {
    errno.ENOSPC,
    errno.EFBIG,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
}


def scratch_dir(path: str | os.PathLike) -> Path:
    """The per-output temporary folder of ``path``: ``.{name}.tmp.d`` in the same directory."""
    final = Path(path)
    return final.with_name(f".{final.name}.tmp.d")


def write_errno(exc: BaseException) -> int | None:
    """The errno of a failed write: an OSError's, or the ``errno = N`` an HDF5 error reports."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return exc.errno
    if isinstance(exc, OSError | RuntimeError):
        for code in WRITE_ERRNOS:
            if f"errno = {code}," in str(exc):
                return code
    return None


class WriteError(HepsnakeError):
    """A write that failed (disk full, no permission): after one, HDF5 may crash at exit, so
    the CLI leaves without running exit handlers."""


def write_error(path: str | os.PathLike, code: int) -> WriteError:
    """The one-line error of a write to ``path`` that failed with ``code``."""
    return WriteError(str(path), f"cannot write: {os.strerror(code)} ({errno.errorcode[code]})")


def freed_after_failed_write(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a failed write repeated by an HDF5 handle freed after it (h5py
    prints those through both the except hook and the unraisable hook)."""
    if exc is None or write_errno(exc) is None:
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.endswith("_objects.pyx")


def quiet_write_errors() -> None:
    """Silence :func:`freed_after_failed_write` repeats (the stage reports the failure once);
    anything else still reaches Python's default hooks."""

    def unraisable(info: Any) -> None:
        if not freed_after_failed_write(info.exc_value):
            sys.__unraisablehook__(info)

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if not freed_after_failed_write(exc):
            sys.__excepthook__(kind, exc, tb)

    sys.unraisablehook = unraisable
    sys.excepthook = excepthook


def os_error(exc: OSError) -> HepsnakeError:
    """An OSError no stage explained, as one line: the file it names (if any) and the cause."""
    code = write_errno(exc)
    cause = os.strerror(code) if code else exc.strerror or str(exc).strip().splitlines()[0]
    where = str(named_file(exc) or "I/O error")
    return (WriteError if code else HepsnakeError)(where, cause)


def named_file(exc: BaseException) -> str | None:
    """The file an error names: its ``filename``, or the ``name = '...'`` of an HDF5 message."""
    match = re.search(r"name = '([^']*)'", str(exc))
    return getattr(exc, "filename", None) or (match.group(1) if match else None)


def concerns(exc: BaseException, folder: Path) -> bool:
    """Whether a failure is about a file in ``folder``: it names one, or names no file."""
    named = named_file(exc)
    return not named or folder.name in str(named)


@contextmanager
def job_scratch(path: str | os.PathLike) -> Iterator[Path]:
    """Yield :func:`scratch_dir` of ``path``, emptied first (what a killed run left), removed
    afterwards; a write failure inside becomes :func:`write_error` naming ``path``."""
    folder = scratch_dir(path)
    try:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        yield folder
    except (OSError, RuntimeError) as exc:
        code = write_errno(exc)
        if code is None or not concerns(exc, folder):
            raise
        raise write_error(path, code) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_given(path: str | os.PathLike, folder: str | os.PathLike) -> Path | None:
    """``path`` spelt from ``folder`` as the caller gave it (e.g. ``results/models/m/x``
    for Lightning's absolute ``/work/.../results/models/m/x``); None when outside ``folder``."""
    inside, base = Path(path).resolve(), Path(folder).resolve()
    return Path(folder) / inside.relative_to(base) if inside.is_relative_to(base) else None


@contextmanager
def name_failed_writes(folder: str | os.PathLike) -> Iterator[None]:
    """A write that fails inside the block (disk full, no permission) becomes
    :func:`write_error` naming the file it names when that lies in the output ``folder`` (as
    ``folder`` is spelt), else ``folder`` itself: never a temporary elsewhere (e.g. a
    library's copy in /tmp)."""
    try:
        yield
    except WriteError as exc:
        raise WriteError(str(as_given(exc.where, folder) or exc.where), exc.cause) from None
    except (OSError, RuntimeError) as exc:
        code = write_errno(exc)
        if code is None:
            raise
        named = named_file(exc)
        inside = as_given(named, folder) if named else None
        raise write_error(inside or folder, code) from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for ``path`` (in :func:`job_scratch`); rename it onto ``path``
    only if the block succeeds."""
    final = Path(path)
    with job_scratch(final) as folder:
        tmp = folder / final.name
        yield tmp
        os.replace(tmp, final)


def copy_atomic(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy ``source`` to ``target`` through :func:`atomic_path`: never a truncated copy."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


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
