"""XRootD client set-up for ``root://`` and ``xroot://`` sample files.

fsspec-xrootd registers only the ``root`` scheme with fsspec; :func:`register_xroot` adds
``xroot`` (the same protocol under XRootD's other name), so that uproot and the remote
listing open both. :func:`set_timeouts` bounds how long a read waits for a server that went
away (XRootD's own defaults retry for minutes).
"""

from hepsnake.config.contracts import XRootD

# config key (convert.xrootd) -> XRootD client setting; each can be overridden by the
# environment variable XRD_<SETTING upper-cased>, which XRootD reads itself and lets win
TIMEOUT_SETTINGS = {
    "connection_window_s": "ConnectionWindow",
    "connection_retry": "ConnectionRetry",
    "request_timeout_s": "RequestTimeout",
    "stream_timeout_s": "StreamTimeout",
}


def register_xroot() -> None:
    """Make fsspec (and so uproot) open ``xroot://`` URLs with fsspec-xrootd, as ``root://``.

    Listing an ``xroot://`` glob gives ``xroot://`` URLs. Without fsspec-xrootd installed this
    does nothing: opening the URL then fails naming the missing package.
    """
    import fsspec

    if "xroot" in fsspec.registry:
        return
    try:
        from fsspec_xrootd import XRootDFileSystem
    except ImportError:
        return

    class XRootAliasFileSystem(XRootDFileSystem):  # type: ignore[misc]
        """fsspec-xrootd under the scheme name ``xroot``."""

        protocol = "xroot"

    fsspec.register_implementation("xroot", XRootAliasFileSystem)


def set_timeouts(settings: XRootD) -> None:
    """Apply the ``convert.xrootd`` settings to the XRootD client of this process.

    A setting given as ``XRD_*`` environment variable is kept (XRootD refuses to replace it).
    Without the XRootD bindings installed this does nothing.
    """
    try:
        from XRootD.client import EnvPutInt
    except ImportError:
        return
    for key, name in TIMEOUT_SETTINGS.items():
        EnvPutInt(name, int(getattr(settings, key)))


def configure(settings: XRootD) -> None:
    """Set this process up for XRootD sample files: ``xroot://`` and the timeouts."""
    register_xroot()
    set_timeouts(settings)
