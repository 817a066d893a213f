"""The shipped examples and `hepsnake init` on the real files: the whole DAG to report.md.

The files come through scikit-hep-testdata (cached offline by .ci/run, downloaded on a user's
machine). Each example is what `hepsnake init` writes for its file (checked here), so running
an example also runs init's config; the two PHYSLITE TTree files run their init config too.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
import skhep_testdata
import yaml
from conftest import REPO, read_together, snakemake

from hepsnake.init.starter import write_starter

EXAMPLES = {
    "physlite_btagging": "uproot-physlite-rntuple_v1-0-0-0.root",
    "nanoaod_btagging": "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root",
    "hzz_flat": "uproot-HZZ.root",
}
# what each report must say the run is: its reference taggers and its experiment
REFERENCES = {"physlite_btagging": ["GN2v01"], "nanoaod_btagging": ["btagCSVV2"], "hzz_flat": []}
INIT_ONLY = ["uproot-issue-951.root", "uproot-issue-798.root"]
TOY_WORDS = re.compile(r"\b(sig|qcd|bib|mS|masses|training masses|LLP)\b")

pytestmark = pytest.mark.slow


def without_paths(text: str) -> str:
    """A config or sheet with its file and sheet paths (which depend on where it lives) cut."""
    text = re.sub(r"^#.*\n", "", text, flags=re.M)
    text = re.sub(r"^samples: .*$", "samples: SHEET", text, flags=re.M)
    return re.sub(r"\S*/([^/\s]+\.root)", r"\1", text)


def run_dag(workdir: Path, configfile: Path) -> str:
    """``snakemake --cores 2 --configfile configfile`` in ``workdir``; the report's text."""
    snakemake(workdir, "--cores", "2", "--configfile", str(configfile))
    return (workdir / "results" / "report.md").read_text()


def check_report(report: str, classes: list[str], references: list[str]) -> None:
    """The report says what the run is (classes, reference taggers, warnings), no toy words."""
    assert f"| classes | {', '.join(classes)} |" in report
    for name in references:
        assert f"| {name} (reference) |" in report
    warnings = report.split("## Warnings", 1)[1]
    assert warnings.strip().startswith(("- ", "### "))  # "- none", or a subject's warnings
    assert not TOY_WORDS.search(report), TOY_WORDS.search(report)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_example_is_what_init_writes(example, tmp_path):
    path = skhep_testdata.data_path(EXAMPLES[example])
    write_starter(path, tmp_path / "init")
    shipped = REPO / "config" / "examples" / example
    for name in ("config.yaml", "samples.tsv"):
        written = (tmp_path / "init" / name).read_text()
        assert without_paths((shipped / name).read_text()) == without_paths(written)


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_example_runs_to_the_report(example, workdir):
    folder = workdir / "config" / "examples" / example
    sheet = folder / "samples.tsv"
    name = EXAMPLES[example]
    assert f"~/.local/skhepdata/{name}" in sheet.read_text()
    # the file where scikit-hep-testdata has it (its cache, or inside the package)
    sheet.write_text(
        sheet.read_text().replace(f"~/.local/skhepdata/{name}", skhep_testdata.data_path(name))
    )
    report = run_dag(workdir, folder.relative_to(workdir) / "config.yaml")
    classes = yaml.safe_load((folder / "config.yaml").read_text())["class_names"]
    check_report(report, classes, REFERENCES[example])
    assert (workdir / "results" / "export").is_dir()
    read_together(workdir / "results")


@pytest.mark.parametrize("name", INIT_ONLY)
def test_init_config_runs_to_the_report(name, workdir):
    out = workdir / "mine"
    write_starter(skhep_testdata.data_path(name), out)
    report = run_dag(workdir, out / "config.yaml")
    check_report(report, yaml.safe_load((out / "config.yaml").read_text())["class_names"], [])


def test_generic_models_run_on_an_example(workdir):
    """Every shipped model config that needs no toy sample (no control region, no parameters,
    no per-constituent truth label such as gn2's toy track origin) trains, predicts and
    evaluates on the PHYSLITE example: no toy field such as mS needed."""

    def generic(model: dict) -> bool:
        tasks = model["model"].get("tasks", [])
        return not {"adversarial", "parameters"} & set(model) and len(tasks) < 2

    models = sorted(
        p.stem
        for p in (REPO / "config" / "models").glob("*.yaml")
        if generic(yaml.safe_load(p.read_text()))
    )
    assert {"baseline", "dense", "gatv2", "lstm", "shc", "transformer"} <= set(models)
    name = EXAMPLES["physlite_btagging"]
    sheet = workdir / "config" / "examples" / "physlite_btagging" / "samples.tsv"
    sheet.write_text(
        sheet.read_text().replace(f"~/.local/skhepdata/{name}", skhep_testdata.data_path(name))
    )
    mine = workdir / "all_models.yaml"
    overrides = {"max_epochs": 1, "batch_size": 64}
    mine.write_text(
        yaml.safe_dump(
            {
                "extends": "config/examples/physlite_btagging/config.yaml",
                "models": models,
                "training_overrides": overrides,
            }
        )
    )
    targets = [f"results/metrics/{m}.json" for m in models]
    snakemake(workdir, "--cores", "2", *targets, "--configfile", str(mine))
    for target in targets:
        assert json.loads((workdir / target).read_text())["inclusive"]["auc"] > 0
