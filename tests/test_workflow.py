"""The Snakemake workflow itself: lint, dry run of the default DAG, a tiny end-to-end run."""

import base64
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import h5py
import numpy as np
import pytest
import skhep_testdata
import yaml
from conftest import REPO, read_together, report_numbers_match, snakemake
from ftag.hdf5 import H5Reader

from hepsnake.config import load
from hepsnake.export.athena import read_gnn_config
from hepsnake.report.page import render

PHYSLITE = "uproot-issue-951.root"


def jobs(dry_run_output: str) -> dict[str, int]:
    """Rule → job count from the job-stats table of ``snakemake -n``."""
    counts: dict[str, int] = {}
    in_table = False
    for line in dry_run_output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif in_table and parts and parts[0] == "total":
            break
    return counts


def test_lint_is_clean(workdir):
    proc = snakemake(workdir, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_default_dry_run_lists_the_dag(workdir):
    out = snakemake(workdir, "-n", "--quiet", "rules").stdout
    samples = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["simulate"]["samples"]
    models = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
    expected = [
        ("simulate", len(samples)),
        ("convert", len(samples)),  # one part per sample: one toy file each
        ("gather", len(samples)),
        ("prepare_splits", 1),
        ("prepare_control", 1),
        ("prepare_norm", 1),
        ("train", len(models)),
        ("predict", len(models)),
        ("evaluate", len(models)),
        ("export", len(models)),
        ("report", 1),
    ]
    for rule, count in expected:
        assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), out


def test_printed_commands_are_short(workdir):
    """What ``snakemake --cores all`` prints (printshellcmds): each command a short reference
    to the resolved config and a name, the longest within 300 characters, with no JSON."""
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    best = f"results/tune/{next(iter(tiny['tune']))}/best.yaml"
    proc = snakemake(workdir, "-n", "all", best, "--configfile", "config/tiny.yaml")
    commands = [
        line.removeprefix("Shell command: ")
        for line in proc.stdout.splitlines()
        if line.startswith("Shell command: hepsnake ")
    ]
    verbs = {c.split()[1] for c in commands}
    assert verbs >= {"simulate", "convert", "split", "norm", "train", "predict", "evaluate"}
    assert verbs >= {"export", "compare", "report", "tune", "study"}
    longest = max(commands, key=len)
    assert len(longest) <= 300, longest
    assert all("--config results/config/resolved.yaml" in c and "{" not in c for c in commands)


def test_models_marked_export_false_are_not_exported(workdir, tmp_path):
    extra = tmp_path / "lstm.yaml"
    extra.write_text("extends: config/config.yaml\nmodels: [baseline, lstm]\n")
    counts = jobs(snakemake(workdir, "-n", "--configfile", str(extra)).stdout)
    assert counts["train"] == 2 and counts["evaluate"] == 2 and counts["export"] == 1


def test_bad_config_key_is_named(workdir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: config/config.yaml\nconvert: {compresion: lzf}\n")
    proc = snakemake(workdir, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    # the file as given, relative to the working directory
    assert (
        "hepsnake: error: bad.yaml: convert/compresion: 'compresion' was unexpected" in proc.stderr
    )


NO_TOY = {
    "class_names": ["light", "b"],
    "readers": {"lite": {"type": "physlite"}},
    "convert": {},
    "inputs": {"variables": {"jets": ["pt", "eta"], "tracks": ["pt", "d0"]}},
    "prepare": {
        "label_map": {
            "variable": "HadronConeExclTruthLabelID",
            "map": {"b": [5], "light": [0, 4], "drop": [15]},
        }
    },
    "evaluate": {"signal": "b"},
    "models": ["baseline"],
}


def test_a_config_file_is_the_whole_config(workdir):
    """``--configfile`` with none of the toy's keys: no toy sample, collection or rule leaks in."""
    mine = workdir / "mine.yaml"
    samples = [{"name": "lite1", "files": skhep_testdata.data_path(PHYSLITE), "reader": "lite"}]
    mine.write_text(yaml.safe_dump(NO_TOY | {"samples": samples}))
    proc = snakemake(workdir, "-n", "-p", "--configfile", str(mine))
    counts = jobs(proc.stdout)
    assert "simulate" not in counts and counts["convert"] == 1 and counts["train"] == 1
    for toy in ('"clusters"', "results/toy", "truth_logp", "sig_mS", "log1p", '"mS"'):
        assert toy not in proc.stdout, toy
    config = load(str(mine))
    assert "simulate" not in config and config["inputs"]["transforms"] == {}
    assert [s["name"] for s in config["samples"]] == ["lite1"]


def ftag_tools_read(results: Path) -> None:
    """atlas-ftag-tools' H5Reader (what puma and Salt load with) reads our files as written.

    puma itself is not installed: puma-hep 0.5 pins numpy < 2.4 and matplotlib < 3.11.
    """
    with h5py.File(results / "predictions" / "baseline.h5") as h5:
        expected = h5["jets"][:]
    columns = ["flavour_label", "baseline_pqcd", "baseline_psig", "baseline_pbib"]
    reader = H5Reader(results / "predictions" / "baseline.h5", batch_size=300, shuffle=False)
    loaded = reader.load({"jets": columns})["jets"]
    assert len(loaded) == len(expected)
    for column in columns:
        np.testing.assert_array_equal(loaded[column], expected[column])
    reader = H5Reader(results / "prepared" / "train.h5", batch_size=300, shuffle=False)
    variables = {"jets": ["pt", "flavour_label"], "tracks": ["pt", "valid"]}
    batch = reader.load(variables, num_global_objects=600)
    assert batch["tracks"].shape == (600, 40)
    assert not batch["tracks"]["pt"][~batch["tracks"]["valid"]].any(), "padding is zero"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory where the tiny config ran end to end, with its
    ``snakemake --report`` (results/report.html)."""
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copytree(REPO / "config", workdir / "config")
    snakemake(workdir, "--cores", "2", "--configfile", "config/tiny.yaml")
    snakemake(workdir, "--configfile", "config/tiny.yaml", "--report", "results/report.html")
    return workdir


@pytest.mark.slow
def test_task_plots_are_in_the_snakemake_report(tmp_path: Path) -> None:
    """A multi-task model's task plots (a directory output of evaluate) are in the HTML report
    of `snakemake --report`, beside its other plots: every PNG the model's evaluation wrote."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    target, model = "results/metrics/gn2.json", ["--config", 'models=["gn2"]']
    snakemake(tmp_path, "--cores", "2", target, "--configfile", "config/tiny.yaml", *model)
    snakemake(
        tmp_path, target, "--report", "report.html", "--configfile", "config/tiny.yaml", *model
    )
    plots = tmp_path / "results" / "plots" / "gn2"
    written = {str(p.relative_to(tmp_path)) for p in plots.glob("**/*.png")}
    assert any("/tasks/" in name for name in written), written
    html = (tmp_path / "report.html").read_text()
    assert {name for name in written if f'"{name}"' in html} == written


@pytest.mark.slow
def test_tiny_end_to_end(tiny_run):
    workdir = tiny_run
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    for name, spec in tiny["simulate"]["samples"].items():
        with h5py.File(workdir / "results" / "h5" / f"{name}.h5") as h5:
            assert 0.5 * spec["n_jets"] < h5["jets"].shape[0] <= spec["n_jets"]
        assert (workdir / "results" / "logs" / "convert" / f"{name}.log").is_file()
    for name in ("train", "val", "test", "control_train", "norm_dict", "class_dict"):
        assert list((workdir / "results" / "prepared").glob(f"{name}.*"))
    metrics = json.loads((workdir / "results" / "metrics" / "baseline.json").read_text())
    assert 0.5 < metrics["backgrounds"]["qcd"]["auc"] <= 1
    assert "bayes_auc" in metrics["backgrounds"]["qcd"]
    with h5py.File(workdir / "results" / "predictions" / "baseline.h5") as h5:
        assert {"baseline_pqcd", "baseline_psig", "baseline_pbib"} <= set(h5["jets"].dtype.names)
    results = workdir / "results"
    text = (results / "report.md").read_text()
    models = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
    all_metrics = {m: json.loads((results / "metrics" / f"{m}.json").read_text()) for m in models}
    for link in report_numbers_match(text, all_metrics):
        assert (results / link).is_file(), link
    assert "![comparison ROC](plots/compare/roc.png)" in text
    assert "## Export (ONNX Runtime, CPU)" in text
    for model in models:
        export = results / "export" / model
        for name in ("model.onnx", "model.int8.onnx", "benchmark.png"):
            assert (export / name).stat().st_size > 0, name
        assert json.loads((export / "validation.json").read_text())["fp32"]["passed"]
        bench = json.loads((export / "benchmark.json").read_text())
        assert set(bench["backends"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
        assert f"![{model} export benchmark](export/{model}/benchmark.png)" in text
    ftag_tools_read(results)
    read_together(results)
    for model in models:  # every model in the Salt/Athena layout too
        gnn = read_gnn_config(results / "export" / model / "model.athena.onnx")
        assert sorted(s["name"] for s in gnn["input_sequences"]) == ["clusters", "tracks"]
        validation = json.loads((results / "export" / model / "validation.json").read_text())
        assert validation["athena"]["passed"]
    assert (results / "report.html").stat().st_size > 10_000
    again = snakemake(workdir, "-n", "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr

    # stale-only reruns: one model's hyperparameter reruns that model's chain only
    model_file = workdir / "config" / "models" / "adversarial.yaml"
    model_file.write_text(model_file.read_text().replace("lr: 0.003", "lr: 0.002"))
    dry = snakemake(workdir, "-n", "--configfile", "config/tiny.yaml")
    assert jobs(dry.stdout) == {
        "train": 1,
        "predict": 1,
        "evaluate": 1,
        "export": 1,
        "compare": 1,  # the epoch comparison reads every model's training metrics
        "report": 1,
        "all": 1,
    }
    assert "wildcards: model=adversarial" in dry.stdout and "model=baseline" not in dry.stdout
    # a conversion option reruns from the conversion on
    gzip = workdir / "config" / "gzip.yaml"
    gzip.write_text("convert: {compression: gzip}\n")
    dry = snakemake(workdir, "-n", "--configfile", "config/tiny.yaml", str(gzip))
    counts = jobs(dry.stdout)
    assert counts["convert"] == len(tiny["simulate"]["samples"]) and "simulate" not in counts
    assert counts["train"] == len(models)


def loaded_images(page) -> list[tuple[str, int]]:
    """Every image of the open page: its src (data URIs shortened) and its natural width
    (0: it did not load)."""
    script = "els => els.map(e => [e.getAttribute('src').slice(0, 60), e.naturalWidth])"
    return [tuple(pair) for pair in page.eval_on_selector_all("img", script)]


def broken_links(page) -> list[str]:
    """Links of the open page that lead nowhere: a file:// link to no file, an anchor to no
    element (the report links only to its own files and sections)."""
    broken = []
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        url = urlparse(href)
        if url.scheme == "file" and not url.fragment:
            ok = Path(unquote(url.path)).exists()
        elif url.fragment:
            ok = page.locator(f"[id='{url.fragment}'], [name='{url.fragment}']").count() > 0
        else:
            ok = False
        if not ok:
            broken.append(href)
    return broken


@pytest.mark.slow
def test_the_report_in_a_real_browser(tiny_run, chromium, tmp_path):
    """report.md rendered as CommonMark (tables on) opens in headless Chromium with every
    table, image and link working; the HTML report of `snakemake --report` holds report.md's
    page and every plot of the run, each image of it loading; screenshots in ``tmp_path``."""
    results = tiny_run / "results"
    text = (results / "report.md").read_text()
    html = render(text, "report.md").replace("<head>", f'<head><base href="{results.as_uri()}/">')
    (tmp_path / "report.md.html").write_text(html)
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((tmp_path / "report.md.html").as_uri(), wait_until="load")
    images = loaded_images(page)
    assert len(images) == text.count("![") and all(w for _, w in images), images
    tables = sum(line.startswith("|---") or line.startswith("| ---") for line in text.splitlines())
    assert page.locator("table").count() == tables > 3
    assert broken_links(page) == []
    page.screenshot(path=tmp_path / "report.md.png", full_page=True)

    page.goto((results / "report.html").as_uri(), wait_until="load")
    entries = page.evaluate(
        "() => Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.mime_type]))"
    )
    plots = {str(p.relative_to(tiny_run)) for p in results.glob("**/*.png")}
    assert "results/report.md.html" in entries
    assert {k for k, mime in entries.items() if mime == "image/png"} == plots
    widths = page.evaluate(
        """async () => Promise.all(Object.entries(results)
            .filter(([k, v]) => v.mime_type.startsWith("image/"))
            .map(([k, v]) => new Promise(done => {
                const img = new Image();
                img.onload = () => done([k, img.naturalWidth]);
                img.onerror = () => done([k, 0]);
                img.src = v.data_uri;
            })))"""
    )
    assert len(widths) == len(plots) and all(w for _, w in widths), widths
    page.screenshot(path=tmp_path / "snakemake_report.png")
    uri = page.evaluate("() => results['results/report.md.html'].data_uri")
    page.set_content(base64.b64decode(uri.split(",", 1)[1]).decode())
    inlined = loaded_images(page)
    assert len(inlined) == len(images) and all(w for _, w in inlined), inlined
    assert page.locator("table").count() == tables
