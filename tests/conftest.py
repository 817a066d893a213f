"""Shared fixtures: the repository, the real ROOT files in ../shared/data, small configs."""

import copy
from pathlib import Path

import pytest
import yaml

from hepsnake.config import validate
from hepsnake.convert.convert import convert
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.toy import simulate, write_root

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
# toy signal masses: trained on, and all (40 is never trained on)
GRID = {"train_masses": [5, 16, 55], "all_masses": [5, 16, 40, 55]}
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


def prepared_toy(
    root: Path, jets: dict[str, int], seed: int, **sections: object
) -> tuple[dict, dict[str, str]]:
    """Toy ``qcd``, ``bib`` and ``sig`` (mS 16) samples with ``jets`` jets each, simulated,
    converted, split and normalised under ``root`` (``norm.yaml``, ``class.yaml``).

    ``sections`` replace whole sections of the shipped config. Returns the validated config
    and the train/val/test paths.
    """
    config = default_config() | {"samples": []} | sections
    for name, process, mass in (("qcd", "qcd", None), ("bib", "bib", None), ("sig", "sig", 16.0)):
        branches = simulate(name, process, jets[name], seed, mass=mass, **GRID)
        write_root(branches, root / f"{name}.root")
        config["samples"].append(
            {
                "name": name,
                "files": [str(root / f"{name}.root")],
                "reader": "toy",
                "label": process,
                "params": {"mS": mass} if mass else {},
            }
        )
    config = validate(config)
    convert_samples(config, root)
    outputs = {s: str(root / f"{s}.h5") for s in SPLITS}
    inputs = [str(root / f"{n}.h5") for n in ("qcd", "bib", "sig")]
    split(config, inputs, outputs, str(root / "summary.json"))
    norm_stats(config, outputs["train"], str(root / "norm.yaml"), str(root / "class.yaml"))
    return config, outputs


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
