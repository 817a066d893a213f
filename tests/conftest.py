"""Shared fixtures: the repository, the real ROOT files in ../shared/data, small configs."""

import copy
from pathlib import Path

import pytest
import yaml

from hepsnake.config import validate
from hepsnake.convert.convert import convert

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PHYSLITE_FILES = {
    "uproot-physlite-rntuple_v1-0-0-0.root": 881,
    "uproot-issue-951.root": 455,
    "uproot-issue-798.root": 372,
}


def default_config() -> dict:
    """The shipped config/config.yaml as a dict (not yet validated)."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def convert_samples(config: dict, root: Path) -> None:
    """Convert every sample of a validated ``config`` to ``root/<name>.h5`` (+ ``.json``)."""
    for s in config["samples"]:
        name = s["name"]
        convert(config, name, root / f"{name}.h5", root / f"{name}.json", show_progress=False)


@pytest.fixture
def config_factory():
    """Build a validated config from the shipped one with samples and overrides replaced."""

    def make(samples: list[dict], **sections) -> dict:
        config = copy.deepcopy(default_config())
        config["samples"] = samples
        for key, value in sections.items():
            config[key] = {**config.get(key, {}), **value}
        return validate(config)

    return make


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real ROOT test files not found at {DATA}")
    return DATA
