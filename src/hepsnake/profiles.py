"""The batch profiles: ``hepsnake install-profile`` and the executor check they run.

Snakemake looks a profile name up as ``./NAME``, then in its user config directory
(``~/.config/snakemake/NAME``, or under ``$XDG_CONFIG_HOME``); the profiles live in this
repository under ``profiles/NAME``, so they are copied there once.
"""

import filecmp
import importlib.util
import shutil
import sys
from pathlib import Path

from hepsnake.errors import HepsnakeError


def user_profile_dir() -> Path:
    """The directory Snakemake searches for global profiles (its own lookup)."""
    from snakemake.cli import get_appdirs

    return Path(get_appdirs().user_config_dir)


def install_profile(
    name: str, source: str = "profiles", dest: str | None = None, force: bool = False
) -> Path:
    """Copy ``source/name`` to ``dest`` (default: Snakemake's user profile dir); return it.

    An existing, different profile there is replaced only with ``force``.
    """
    src = Path(source) / name
    if name == "default":
        raise HepsnakeError(str(src), "the workflow profile is loaded automatically; not installed")
    if not (src / "config.yaml").is_file():
        raise HepsnakeError(str(src / "config.yaml"), "no such profile")
    target = Path(dest) if dest else user_profile_dir() / name
    installed = target / "config.yaml"
    if target.exists():
        if installed.is_file() and filecmp.cmp(src / "config.yaml", installed, shallow=False):
            return target
        if not force:
            raise HepsnakeError(str(target), "a different profile is there; --force replaces it")
    staging = target.with_name(f".{target.name}.installing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def executor(name: str) -> str:
    """``name``, the executor a profile selects, if its Snakemake plugin is installed; else exit
    with one line naming the extra that installs it.

    The batch profiles call this while Snakemake reads them (``__use_yte__``), before it
    checks ``--executor`` against the installed plugins and prints its usage.
    """
    plugin = f"snakemake_executor_plugin_{name}"
    if importlib.util.find_spec(plugin) is None:
        sys.exit(
            f"hepsnake: error: profile {name}: the Snakemake executor plugin "
            f"{plugin.replace('_', '-')} is not installed: pip install 'hepsnake[{name}]' "
            f"(in a checkout: pip install -e '.[{name}]')"
        )
    return name
