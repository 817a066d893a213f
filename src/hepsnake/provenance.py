"""Provenance of a result: the versions of the packages it was made with and the git commit of
the workflow (light imports only: every verb's start-up may need it)."""

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "hepsnake",
    "snakemake",
    "uproot",
    "awkward",
    "h5py",
    "numpy",
    "torch",
    "lightning",
    "scikit-learn",
    "onnxruntime",
)


def package_versions() -> dict[str, str]:
    """The installed version of each of :data:`PACKAGES` ("not installed" where absent)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: Path) -> str:
    """The short commit hash of the git checkout at ``cwd``, or "unknown" outside one."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
