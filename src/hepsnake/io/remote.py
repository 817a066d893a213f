"""Credentials in remote sample URLs (``s3://``, ``root://``): refused in the config,
redacted wherever a URL is written (the listing is :mod:`hepsnake.io.listing`)."""

import re
from urllib.parse import parse_qsl, unquote, urlsplit

REMOTE_PREFIXES = ("root://", "s3://", "http://", "https://", "xroot://")
# query parameters that carry credentials (XRootD tokens, presigned S3 URLs)
SECRET_QUERY_KEYS = re.compile(r"authz|token|signature|credential|secret|password", re.IGNORECASE)


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL read through XRootD/fsspec rather than a local file."""
    return path.startswith(REMOTE_PREFIXES)


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
