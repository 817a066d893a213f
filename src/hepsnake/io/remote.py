"""Remote sample files (``s3://``, ``root://``): glob listing and credential redaction.

Used inside the convert job, where the credentials are; fsspec (s3fs, fsspec-xrootd)
does the listing, uproot the reading.
"""

import glob
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hepsnake.config import expand_files, is_remote
from hepsnake.errors import HepsnakeError

# URL schemes whose globs are expanded by listing the storage (http(s) cannot be listed)
LISTABLE_PREFIXES = ("root://", "s3://", "xroot://")
# query parameters that carry credentials (XRootD tokens, presigned S3 URLs)
SECRET_QUERY_KEYS = re.compile(r"authz|token|signature|credential|secret|password", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """The credential parts of a URL: its user-info (``key:secret@``) and token query values."""
    if not is_remote(url):
        return []
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    found = [userinfo] if at and userinfo else []
    if ":" in userinfo:
        user, password = userinfo.split(":", 1)
        found += [password, *([user] if len(user) >= 4 else [])]
    found += [v for k, v in parse_qsl(parts.query) if SECRET_QUERY_KEYS.search(k) and v]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


HOW_TO_PASS = (
    "credentials never go in the config: for s3:// set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials) in the job's environment; "
    "root:// authenticates with a Kerberos ticket (kinit) or a grid proxy "
    "(config/README.md, Remote files)"
)


def embedded_credentials(url: str) -> str | None:
    """What secret a sample URL carries (a password, a token query parameter), or None."""
    if not is_remote(url):
        return None
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        return "a password (user:password@)"
    keys = [k for k, v in parse_qsl(parts.query) if SECRET_QUERY_KEYS.search(k) and v]
    return f"a credential query parameter '{keys[0]}'" if keys else None


def refuse_credentials(config: dict[str, Any]) -> None:
    """Raise naming the sample if a file URL embeds a secret, which Snakemake would record
    (its command lines, logs and ``.snakemake/`` metadata): say how to pass it instead."""
    for sample in config["samples"]:
        for url in sample["files"]:
            secret = embedded_credentials(url)
            if secret:
                raise HepsnakeError(
                    f"config: samples: {sample['name']}: files",
                    f"'{redact_url(url)}' embeds {secret}; {HOW_TO_PASS}",
                )


def redact_url(url: str) -> str:
    """``url`` fit for logs and outputs: user-info and credential query values become ``***``.

    Local paths and URLs without credentials are returned unchanged.
    """
    parts = urlsplit(url) if is_remote(url) else None
    if parts is None or not url_secrets(url):
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    query = "&".join(
        f"{k}={'***' if SECRET_QUERY_KEYS.search(k) else v}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with the URL and its credentials redacted."""
    text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def redact_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``sample`` whose file URLs are redacted, for provenance records."""
    return {**sample, "files": [redact_url(f) for f in sample.get("files", [])]}


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


def expand_urls(sample: dict[str, Any]) -> list[str]:
    """:func:`hepsnake.config.expand_files`, with remote globs listed through fsspec."""
    return [
        url
        for path in expand_files(sample)
        for url in (expand_remote(path, sample["name"]) if is_remote_glob(path) else [path])
    ]
