"""Remote sample files: globs expanded by listing the storage, inside a job (the workflow's
listing job, :mod:`hepsnake.convert.file_list`; or a one-job ``hepsnake convert``).

Used where the credentials are; fsspec (s3fs, fsspec-xrootd) does the listing, uproot the
reading.
"""

import glob
from collections.abc import Sequence

from hepsnake.config import expand_files
from hepsnake.errors import HepsnakeError
from hepsnake.io.remote import redact_text, redact_url

# URL schemes whose globs are expanded by listing the storage (http(s) cannot be listed)
LISTABLE_PREFIXES = ("root://", "s3://", "xroot://")


def is_remote_glob(pattern: str) -> bool:
    """Whether a URL is a pattern to expand by listing: ``*`` or ``[...]`` in a listable scheme.

    ``?`` is not a wildcard in URLs: it starts the query (XRootD CGI, presigned URLs).
    """
    return pattern.startswith(LISTABLE_PREFIXES) and glob.has_magic(pattern.replace("?", ""))


def expand_remote(pattern: str, sample_name: str) -> list[str]:
    """The URLs matching a remote glob (sorted), listed through fsspec."""
    shown = redact_url(pattern)
    try:
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(pattern)
        matched = sorted(fs.unstrip_protocol(p) for p in fs.glob(path))
    except Exception as exc:
        cause = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {cause[0] if cause else ''}".rstrip(": ")
        raise HepsnakeError(shown, redact_text(f"cannot list ({reason})", pattern)) from None
    if not matched:
        raise HepsnakeError(shown, f"no file matches (sample '{sample_name}')")
    return matched


def expand_urls(sample: str, files: Sequence[str]) -> list[str]:
    """:func:`hepsnake.config.expand_files` of sample ``sample``'s ``files``, with remote globs
    listed through fsspec."""
    return [
        url
        for path in expand_files(sample, files)
        for url in (expand_remote(path, sample) if is_remote_glob(path) else [path])
    ]
