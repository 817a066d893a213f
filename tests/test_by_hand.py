"""One path for every run: each verb run by hand, ``hepsnake VERB --config my.yaml [--model |
--sample | --study NAME]`` with the standard layout's default paths, writes what the
Snakemake run of the same YAML file wrote, byte for byte.

A small DAG (the tiny config: one adversarial model, so the control region is made; a
two-trial study; MLflow tracking) runs under Snakemake. Then, for one job of every verb, a
copy of that run's folder loses the job's outputs and the verb is run by hand in it, from the
YAML file (Snakemake passed its resolved file); the outputs are compared with Snakemake's.

Not compared byte for byte, as they are timings (or per-run identifiers) by nature: a
training's per-epoch ``seconds``, ``jets_per_s`` and ``train_seconds`` (metrics.json;
the checkpoints are compared by weights and hyperparameters, which hold no time), the
export's latency and throughput figures (benchmark.json, benchmark.png), the creation time
and UUID uproot writes into a ROOT file (the toy's branches are compared), and MLflow run ids
(new for every run: ``results/tracking/runs.json`` tracks the same models, a study.json the
same trials), and Snakemake's own ``.snakemake_timestamp`` in a directory output.
Train and tune run with the rule's ``--threads 2``, the other verbs with the rule's defaults.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, snakemake

from hepsnake import paths

HAND = {
    "extends": "config/tiny.yaml",
    "models": ["adversarial"],
    "tune": {"two": {"file": "config/tune/two.yaml"}},
    "tracking": {"mlflow": {"uri": "results/mlruns", "experiment": "by-hand"}},
}
TWO = {
    "base_model": "dense",
    "n_trials": 2,
    "space": {"training.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}},
}
TIMINGS = {"seconds", "jets_per_s", "train_seconds"}

# (verb, name flags, the job's outputs): one job of every verb
JOBS = [
    ("simulate", ["--sample", "bib"], [paths.fill(paths.TOY, toy="bib")]),
    (
        "convert",
        ["--sample", "sig_mS16", "--part", "0"],
        [paths.part_file("sig_mS16", 0)],
    ),
    (
        "gather",
        ["--sample", "sig_mS16"],
        [paths.fill(t, sample="sig_mS16") for t in (paths.CONVERTED, paths.CONVERT_SUMMARY)],
    ),
    (
        "split",
        [],
        [
            *(paths.fill(paths.SPLIT, split=s) for s in paths.SPLITS),
            *(paths.fill(paths.DEBUG_SPLIT, split=s) for s in paths.SPLITS),
            paths.SPLIT_SUMMARY,
            paths.REWEIGHTING_PLOT,
        ],
    ),
    (
        "split",
        ["--control"],
        [*(paths.fill(paths.CONTROL_SPLIT, split=s) for s in paths.SPLITS), paths.CONTROL_SUMMARY],
    ),
    ("norm", [], [paths.NORM, paths.CLASS_DICT, paths.CLASSES]),
    (
        "train",
        ["--model", "adversarial"],
        [paths.fill(p, model="adversarial") for p in paths.MODEL_OUTPUTS.values()],
    ),
    (
        "tune",
        ["--study", "two", "--job", "0"],
        [paths.fill(paths.TRIAL, study="two", trial=0)],
    ),
    (
        "study",
        ["--study", "two"],
        [
            paths.fill(t, study="two")
            for t in (
                paths.BEST_MODEL,
                paths.STUDY_SUMMARY,
                paths.STUDY_HISTORY,
                paths.STUDY_IMPORTANCES,
            )
        ],
    ),
    ("predict", ["--model", "adversarial"], [paths.fill(paths.PREDICTIONS, model="adversarial")]),
    (
        "evaluate",
        ["--model", "adversarial"],
        [paths.fill(p, model="adversarial") for p in (paths.METRICS, paths.PLOT_DIR)],
    ),
    (
        "export",
        ["--model", "adversarial"],
        [
            paths.fill(p, model="adversarial")
            for k, p in paths.EXPORT_OUTPUTS.items()
            if k != "athena"
        ],
    ),
    ("compare", [], [paths.EPOCHS, paths.EPOCHS_PLOT]),
    ("report", [], [paths.REPORT, paths.COMPARE_ROC]),
    ("track", [], [paths.RUNS]),
]


@pytest.fixture(scope="module")
def dag(tmp_path_factory) -> Path:
    """The Snakemake run of ``hand.yaml`` (the default target and the study's best.yaml)."""
    workdir = tmp_path_factory.mktemp("by_hand")
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / "config" / "tune" / "two.yaml").write_text(yaml.safe_dump(TWO))
    (workdir / "hand.yaml").write_text(yaml.safe_dump(HAND))
    best = paths.fill(paths.BEST_MODEL, study="two")
    snakemake(workdir, "--cores", "2", "all", best, "--configfile", "hand.yaml")
    return workdir


def same_json(a: Path, b: Path, ignore: set[str]) -> None:
    def strip(data: object) -> object:
        if isinstance(data, dict):
            return {k: strip(v) for k, v in data.items() if k not in ignore}
        if isinstance(data, list):
            return [strip(v) for v in data]
        return data

    assert strip(json.loads(a.read_text())) == strip(json.loads(b.read_text())), a.name


def same_checkpoint(a: Path, b: Path) -> None:
    one, two = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    assert one["hyper_parameters"] == two["hyper_parameters"]
    assert one["state_dict"].keys() == two["state_dict"].keys()
    for key, value in one["state_dict"].items():
        assert torch.equal(value, two["state_dict"][key]), key


def same_tree(a: Path, b: Path) -> None:
    """The TTree branches of two ROOT files."""
    import uproot

    one, two = uproot.open(a)["jets"], uproot.open(b)["jets"]
    names = one.keys()
    assert names == two.keys()
    for key in names:
        assert one[key].array(library="ak").tolist() == two[key].array(library="ak").tolist(), key


def compare(verb: str, by_hand: Path, by_snakemake: Path) -> None:
    """Byte for byte, but for the timings (module docstring); a folder file by file."""
    if by_snakemake.is_dir():
        files = sorted(
            p.relative_to(by_snakemake)
            for p in by_snakemake.rglob("*")
            if p.is_file() and p.name != ".snakemake_timestamp"
        )
        assert files == sorted(p.relative_to(by_hand) for p in by_hand.rglob("*") if p.is_file())
        for file in files:
            compare(verb, by_hand / file, by_snakemake / file)
        return
    name = by_hand.name
    if verb == "simulate":
        same_tree(by_hand, by_snakemake)
    elif verb == "train" and name.endswith(".ckpt"):
        same_checkpoint(by_hand, by_snakemake)
    elif verb == "train" and name == "metrics.json":
        same_json(by_hand, by_snakemake, TIMINGS)
    elif verb == "export" and name == "benchmark.json":
        bench = json.loads(by_hand.read_text())
        assert bench.keys() == json.loads(by_snakemake.read_text()).keys()
    elif verb == "export" and name == "benchmark.png":
        assert by_hand.stat().st_size > 0
    elif verb == "study" and name == "study.json":
        same_json(by_hand, by_snakemake, {"run_id", "trial_runs"})
    elif verb == "track":
        runs = json.loads(by_hand.read_text())["runs"]
        assert runs.keys() == json.loads(by_snakemake.read_text())["runs"].keys()
    else:
        assert by_hand.read_bytes() == by_snakemake.read_bytes(), by_hand


@pytest.mark.slow
@pytest.mark.parametrize(
    ("verb", "names", "outputs"), JOBS, ids=[" ".join([j[0], *j[1]]) for j in JOBS]
)
def test_each_verb_by_hand_writes_what_snakemake_wrote(dag, tmp_path, verb, names, outputs):
    hand = tmp_path / "hand"
    shutil.copytree(dag, hand, ignore=shutil.ignore_patterns(".snakemake"))
    for output in map(hand.joinpath, outputs):
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    if verb == "tune":  # a fresh study: trial 0 is asked and trained again
        (hand / paths.fill(paths.JOURNAL, study="two")).unlink()
        shutil.rmtree(hand / paths.fill(paths.TRIAL_DIR, study="two", trial=0))
    if verb == "track":
        shutil.rmtree(hand / "results" / "mlruns")
    cmd = [shutil.which("hepsnake"), verb, "--config", "hand.yaml", *names]
    if verb in ("export", "report"):
        cmd += ["--repo", str(REPO)]  # what the rule passes (its workflow's checkout)
    if verb in ("train", "tune"):
        cmd += ["--threads", "2"]  # the rule's threads
    proc = subprocess.run(cmd, cwd=hand, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for output in outputs:
        compare(verb, hand / output, dag / output)
