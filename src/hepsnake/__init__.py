"""hepsnake: from ROOT/xAOD files to a trained, evaluated and exported jet classifier."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hepsnake")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
