"""Shared fixtures and helpers: the repository, the real ROOT files (through
scikit-hep-testdata), small configs, an untrained tiny checkpoint, the report-vs-metrics check."""

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

# torch's idle OpenMP threads sleep instead of spinning (read when torch loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import h5py
import lightning
import pytest
import skhep_testdata
import torch
import yaml

from hepsnake.config import build, contract, resolve, validate
from hepsnake.config.contracts import ModelSpec, TrainingSpec, trained
from hepsnake.config.resolved import validated_model
from hepsnake.report.tables import fmt
from hepsnake.simulate.prepared import prepared_toy as toy_samples
from hepsnake.training.module import TaggerModule

# pytest-xdist runs test files side by side (one worker per core): torch in each worker gets
# its share of the cores
torch.set_num_threads(
    max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
)

REPO = Path(__file__).resolve().parents[1]
PHYSLITE_FILES = {
    "uproot-physlite-rntuple_v1-0-0-0.root": 881,
    "uproot-issue-951.root": 455,
    "uproot-issue-798.root": 372,
}


def stage(config: dict, name: str, models: dict | None = None, **names: str):
    """The contract of stage ``name`` from a validated ``config`` (``models``: model configs
    given as data, by name), for the ``model``/``sample``/``study`` in ``names``."""
    return contract(resolve(config, models=models), name, **names)


def train_contract(config: dict, model: dict, name: str = "m"):
    """The train contract of a model config given as data, named ``name``."""
    return stage(config, "train", models={name: model}, model=name)


def inputs_of(config: dict, **changes: object):
    """The typed ``inputs`` of a validated ``config``, with keys of ``changes`` replaced."""
    return stage({**config, "inputs": {**config["inputs"], **changes}}, "norm").inputs


def model_spec(block: dict):
    """The typed ``model:`` block of a model config given as data (validated, defaults
    filled)."""
    model = validated_model({"training_overrides": {}}, "m", {"model": block})
    return build(ModelSpec, model["model"])


def training_spec(**keys: object):
    """A model's typed ``training`` block with ``keys`` set (defaults filled)."""
    model = validated_model({"training_overrides": {}}, "m", {"model": {}, "training": keys})
    return build(TrainingSpec, model["training"])


def cluster_unavailable(reason: str, how: str) -> NoReturn:
    """Skip a test that needs a service this machine lacks (``how``: how to start it), or
    fail it where ``.ci/run`` promised the service (``HEPSNAKE_REQUIRE_CLUSTER=1``)."""
    if os.environ.get("HEPSNAKE_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"{reason}, but HEPSNAKE_REQUIRE_CLUSTER=1 ({how})", pytrace=False)
    pytest.skip(f"{reason} ({how}; HEPSNAKE_REQUIRE_CLUSTER=1 makes this a failure)")


# Debian's chromium, headless; without the background-networking flags its connections are
# refused here (no network)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_unavailable(reason: str) -> NoReturn:
    """Skip a browser test on a machine without Chromium or Playwright, or fail it where
    ``.ci/run`` installed them (``HEPSNAKE_REQUIRE_BROWSER=1``)."""
    how = "apt-get install chromium; pip install -e '.[test]' brings playwright"
    if os.environ.get("HEPSNAKE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but HEPSNAKE_REQUIRE_BROWSER=1 ({how})", pytrace=False)
    pytest.skip(f"{reason} ({how}; HEPSNAKE_REQUIRE_BROWSER=1 makes this a failure)")


@pytest.fixture(scope="module")
def chromium():
    """A real headless Chromium (Debian's package) driven by Playwright (the driver only)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_unavailable("playwright is not installed")
    path = shutil.which("chromium")
    if path is None:
        browser_unavailable("no chromium on PATH")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def default_config() -> dict:
    """The shipped config/config.yaml as a dict (not yet validated)."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def prepared_toy(
    root: Path, jets: dict[str, int], seed: int, **sections: object
) -> tuple[dict, dict[str, str]]:
    """Toy ``qcd``, ``bib`` and ``sig`` (mS 16) samples with ``jets`` jets each, prepared under
    ``root`` (:func:`hepsnake.simulate.prepared.prepared_toy`); ``sections`` replace whole
    sections of the shipped config. Returns the validated config and the split paths.
    """
    return toy_samples(default_config() | sections, root, jets, seed)


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


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``snakemake -s REPO/Snakefile -d WORKDIR ARGS`` run in ``workdir`` (relative paths in
    ``args`` are the workdir's)."""
    exe = shutil.which("snakemake")
    assert exe, "snakemake is installed"
    proc = subprocess.run(
        [exe, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh working directory with a copy of the repository's config/ (results land here)."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of the scikit-hep-testdata files (all of them fetched into one cache)."""
    paths = {Path(skhep_testdata.data_path(n)).parent for n in (*PHYSLITE_FILES, "uproot-HZZ.root")}
    assert len(paths) == 1, paths
    return paths.pop()


TINY = {
    "dim": 8,
    "jet_inputs": "constituents",
    "init_nets": {"default": {"hidden": [8]}},
    "encoder": {"type": "deepsets", "layers": 1},
    "pooling": {"type": "sum"},
    "head": {"hidden": [8]},
}
TRAINING = {"lr": 1e-3, "weight_decay": 0.0, "schedule": "none", "seed": 1}


def checkpoint(data, name, model_cfg=TINY, parameters=None):
    """A checkpoint of an untrained tagger, as ``load_module`` reads it."""
    config, root, _, norm = data
    torch.manual_seed(0)
    model = {
        "model": model_cfg,
        "training": TRAINING | {"class_weights": False},
        "parameters": parameters,
    }
    module = TaggerModule(trained(train_contract(config, model, name), norm, []))
    path = root / f"{name}.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return str(path)


def section(text: str, heading: str) -> list[str]:
    """The lines under ``heading`` up to the next ``## `` heading."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1 : end]


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every Markdown table row in ``lines``."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in lines
        if line.startswith("| ")
    ]


def report_numbers_match(report_text: str, metrics: dict) -> list[str]:
    """Assert the numbers of report.md equal the metrics JSON (as the report formats them):
    the comparison table's AUCs and K-S, each model's rejections and K-S values; return the
    image links of the report."""
    comparison = table_rows(section(report_text, "## Model comparison"))
    for model, met in metrics.items():
        row = next(r for r in comparison if r[0] == model)
        numbers = []
        for entry in [met["inclusive"], *met["backgrounds"].values()]:
            numbers += [fmt(entry["auc"]), fmt(entry.get("bayes_auc", "-"))]
        numbers.append(fmt(met.get("control_ks", {}).get("sig", {}).get("ks", "-")))
        assert row[2:] == numbers, (row, numbers)
        rows = table_rows(section(report_text, f"## Model `{model}`"))
        entries = {"all backgrounds": met["inclusive"], **met["backgrounds"]}
        for name, entry in entries.items():
            for wp, rej in entry["rejection"].items():
                expected = [name, wp, fmt(rej["rejection"]), fmt(rej["uncertainty"])]
                assert expected in rows, (expected, rows)
        for c, ks in met.get("control_ks", {}).items():
            assert [c, fmt(ks["ks"]), fmt(ks["p_value"])] in rows, (c, rows)
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_text)


def read_together(results: Path) -> None:
    """atlas-ftag-tools' ``H5Reader`` reads every jet field of all converted files of a run at
    once, and of all its prepared files at once: one ``jets`` dtype per kind (issue 25)."""
    from ftag.hdf5 import H5Reader

    kinds = {"converted": sorted((results / "h5").glob("*.h5"))}
    kinds["prepared"] = sorted((results / "prepared").glob("*.h5"))
    for kind, files in kinds.items():
        assert files, kind
        dtypes, total = set(), 0
        for path in files:
            with h5py.File(path) as h5:
                dtypes.add(h5["jets"].dtype)
                total += h5["jets"].shape[0]
        assert len(dtypes) == 1, (kind, dtypes)
        reader = H5Reader(files, batch_size=total, shuffle=False)
        jets = reader.load({"jets": None}, num_global_objects=total)["jets"]
        assert jets.dtype == dtypes.pop() and total - len(files) <= len(jets) <= total, kind
