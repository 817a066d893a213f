"""`hepsnake init --from FILE --out DIR` on each real file: a standalone config whose reader
converts that file, with labels, reference taggers and units taken from the file."""

import copy
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import awkward as ak
import h5py
import numpy as np
import pytest
import skhep_testdata
import uproot
import yaml
from conftest import default_config, snakemake, stage

from hepsnake.cli import main
from hepsnake.config import validate
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.init.starter import class_masks, write_starter
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.split import SPLITS
from hepsnake.report.markdown import fmt
from hepsnake.simulate import nanoaod
from hepsnake.simulate.toy import simulate_sample, write_root

FILES = {
    # file: (reader, classes, reference tagger jet variables, constituent collections)
    "uproot-physlite-rntuple_v1-0-0-0.root": (
        "physlite",
        ["ujets", "cjets", "bjets"],
        ["GN2v01_pb", "GN2v01_pc", "GN2v01_pu"],
        ["tracks"],
    ),
    "uproot-issue-951.root": (
        "physlite",
        ["ujets", "cjets", "bjets"],
        ["DL1dv01_pb", "DL1dv01_pc", "DL1dv01_pu"],
        ["tracks"],
    ),
    "uproot-issue-798.root": (
        "physlite",
        ["ujets", "cjets", "bjets"],
        ["DL1r_pb", "DL1r_pc", "DL1r_pu"],
        ["tracks"],
    ),
    "uproot-HZZ.root": ("flat", ["ujets", "bjets"], [], []),
    "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root": (
        "nanoaod",
        ["ujets", "cjets", "bjets"],
        ["btagCSVV2"],  # btagDeepFlavB and btagDeepB hold one default value for every jet
        ["electrons", "muons"],
    ),
}
TOY_KEYS = {"simulate"}


@pytest.fixture(scope="module", params=list(FILES))
def started(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp("init") / "cfg"
    lines = write_starter(skhep_testdata.data_path(name), out)
    return name, out, lines, yaml.safe_load((out / "config.yaml").read_text())


def test_config_is_standalone_and_validates(started):
    name, out, lines, raw = started
    reader, classes, taggers, collections = FILES[name]
    assert not TOY_KEYS & set(raw)
    assert raw["class_names"] == classes
    assert raw["samples"] == str(out / "samples.tsv")
    assert list(raw["readers"]) == [reader]
    assert raw["models"] == (["baseline"] if collections else ["dense"])
    assert raw["model_dir"] == "config/models"
    references = raw["evaluate"]["reference_taggers"]
    fields = [
        f
        for r in references.values()
        for f in [r.get("score"), *r.get("probabilities", {}).values()]
        if f
    ]
    assert sorted(fields) == sorted(taggers)
    assert sorted(c for c in raw["inputs"]["variables"] if c != "jets") == collections
    config = validate(copy.deepcopy(raw))
    (sample,) = config["samples"]
    assert sample["reader"] == reader and sample["files"] == [skhep_testdata.data_path(name)]
    label_map = raw["prepare"]["label_map"]
    assert label_map["variable"] in raw["inputs"]["truth"]
    assert set(label_map["map"]) - {"drop"} == set(classes)
    assert any(line.startswith("Found: ") for line in lines)
    assert (out / "config.yaml").read_text().startswith("# hepsnake starter config")


def test_reader_converts_the_file(started, tmp_path):
    name, _, _, raw = started
    _, _, taggers, collections = FILES[name]
    config = validate(copy.deepcopy(raw))
    (sample,) = config["samples"]
    out = tmp_path / "s.h5"
    c = stage(config, "convert", sample=sample["name"])
    report = convert(c, out, tmp_path / "s.json", show_progress=False)
    label = raw["prepare"]["label_map"]["variable"]
    with h5py.File(out) as h5:
        jets = h5["jets"][:]
        unit = h5["jets"].attrs["energy_unit"]
        assert sorted(k for k in h5 if k != "jets") == collections
    assert report["jets"] == len(jets) > 0
    assert unit == ("MeV" if raw["readers"].get("physlite") else "GeV")
    assert (jets["pt"] > (20000 if unit == "MeV" else 20)).all()
    assert label in jets.dtype.names and np.isfinite(jets[label]).all()
    for tagger in taggers:
        assert tagger in jets.dtype.names
        assert jets[tagger].max() <= 1 and ((jets[tagger] >= 0) & (jets[tagger] <= 1)).mean() > 0.5
    # every class has jets in train, val and test under the config's fractions and seed
    prep = config["prepare"]
    fractions = [prep["fractions"][s] for s in SPLITS]
    u = event_uniform(sample["name"], jets["eventNumber"], prep["seed"])
    which = assign_splits(u, fractions)
    masks = class_masks(jets[label], raw["prepare"]["label_map"]["map"])
    assert len(masks) == len(raw["class_names"])
    for mask in masks:
        assert sorted(set(which[mask].tolist())) == [0, 1, 2]


def test_hzz_label_is_a_declared_proxy(tmp_path):
    lines = write_starter(skhep_testdata.data_path("uproot-HZZ.root"), tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    assert "PROXY" in text and "all zero" in text
    raw = yaml.safe_load(text)
    jets = raw["readers"]["flat"]["jets"]
    assert jets["pt"] == "hypot(Jet_Px, Jet_Py)" and jets["truth_btag_proxy"] == "Jet_btag"
    assert "btag" not in jets  # the proxy's source is not also a reference tagger
    assert any("PROXY" in line for line in lines)


def test_existing_config_needs_force_and_bad_file_is_one_line(tmp_path, capsys):
    path = skhep_testdata.data_path("uproot-HZZ.root")
    assert main(["init", "--from", path, "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["init", "--from", path, "--out", str(tmp_path)]) == 1
    assert "exists (use --force" in capsys.readouterr().err
    assert main(["init", "--from", path, "--out", str(tmp_path), "--force"]) == 0
    bad = tmp_path / "bad.root"
    bad.write_text("not root\n" * 50)
    assert main(["init", "--from", str(bad), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "not a readable ROOT file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    assert main(["init", "--from", path, "--reader", "physlite", "--out", str(tmp_path / "y")]) == 1
    assert "no PHYSLITE jets" in capsys.readouterr().err


def test_flat_without_truth_label_uses_the_dr_to_mc_b_quarks(tmp_path):
    """A flat ntuple with non-zero MC b-quark momenta: jets within ΔR < 0.3 are b jets."""
    path = tmp_path / "ntuple.root"
    jets = {  # event 0: jet 0 along the hadronic b, jet 1 far; event 1: jet 0 near the leptonic b
        "Jet_Px": ak.Array([[50.0, -40.0], [30.0]]),
        "Jet_Py": ak.Array([[0.0, 10.0], [30.0]]),
        "Jet_Pz": ak.Array([[10.0, 5.0], [0.0]]),
        "Jet_E": ak.Array([[60.0, 50.0], [45.0]]),
        "Jet_btag": ak.Array([[0.9, 0.1], [0.2]]),
    }
    quarks = {
        "MChadronicBottom_px": np.array([20.0, 0.0]),
        "MChadronicBottom_py": np.array([1.0, 0.0]),
        "MChadronicBottom_pz": np.array([4.0, 0.0]),
        "MCleptonicBottom_px": np.array([0.0, 10.0]),
        "MCleptonicBottom_py": np.array([-5.0, 11.0]),
        "MCleptonicBottom_pz": np.array([0.0, 0.5]),
    }
    with uproot.recreate(path) as f:
        types = {k: v.type for k, v in jets.items()} | {k: v.dtype for k, v in quarks.items()}
        f.mktree("events", types)
        f["events"].extend(jets | quarks)
    write_starter(str(path), tmp_path / "cfg")
    raw = yaml.safe_load((tmp_path / "cfg" / "config.yaml").read_text())
    assert raw["prepare"]["label_map"] == {
        "variable": "truth_dr_b",
        "map": {"bjets": {"range": [0, 0.3]}, "ujets": {"range": [0.3, 1e9]}},
    }
    config = validate(copy.deepcopy(raw))
    name = config["samples"][0]["name"]
    out = tmp_path / "s.h5"
    convert(stage(config, "convert", sample=name), out, tmp_path / "s.json", show_progress=False)
    with h5py.File(out) as h5:
        dr = h5["jets"]["truth_dr_b"]
    eta = lambda px, py, pz: np.arcsinh(pz / np.hypot(px, py))  # noqa: E731
    phi = np.arctan2
    by_hand = [
        np.hypot(eta(50, 0, 10) - eta(20, 1, 4), phi(0, 50) - phi(1, 20)),
        np.hypot(eta(-40, 10, 5) - eta(0, -5, 0), phi(10, -40) - phi(-5, 0) - 2 * np.pi),
        np.hypot(eta(30, 30, 0) - eta(10, 11, 0.5), phi(30, 30) - phi(11, 10)),
    ]
    np.testing.assert_allclose(dr, by_hand, rtol=1e-5)
    assert dr[0] < 0.3 < dr[1] and dr[2] < 0.3


def test_written_names_and_paths_are_safe(tmp_path):
    """A file name starting with '_' still gives a valid sample name; a path the sheet would
    split (space, comma) is one error line; the sheet path is absolute."""
    source = Path(skhep_testdata.data_path("uproot-HZZ.root"))
    odd = tmp_path / "_hzz.root"
    odd.symlink_to(source)
    write_starter(str(odd), tmp_path / "cfg")
    raw = yaml.safe_load((tmp_path / "cfg" / "config.yaml").read_text())
    assert Path(raw["samples"]).is_absolute()
    (sample,) = validate(copy.deepcopy(raw))["samples"]
    assert sample["name"] == "s_hzz"
    spaced = tmp_path / "my data" / "hzz.root"
    spaced.parent.mkdir()
    shutil.copyfile(source, spaced)
    with pytest.raises(HepsnakeError, match="spaces or commas"):
        write_starter(str(spaced), tmp_path / "cfg2")


# ---- flat ntuples of any layout: the toy, CalRatio-style, NanoAOD-like with NLO weights ----

TOY_JETS = {"qcd": 600, "bib": 400, "sig_mS5": 300, "sig_mS16": 300}


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory) -> dict[str, Path]:
    """Small toy files as `hepsnake simulate` writes them (the shipped config's generator)."""
    root = tmp_path_factory.mktemp("toy")
    config = default_config()
    samples = config["simulate"]["samples"]
    config["simulate"]["samples"] = {n: samples[n] | {"n_jets": k} for n, k in TOY_JETS.items()}
    config = validate(config)
    for name in TOY_JETS:
        simulate_sample(stage(config, "simulate", sample=name), root / f"{name}.root")
    return {name: root / f"{name}.root" for name in TOY_JETS}


def toy_sources(files: dict[str, Path]) -> list[str]:
    """``--from`` arguments giving each toy file its class (qcd, bib, sig)."""
    return [f"{name.split('_')[0]}={path}" for name, path in files.items()]


def test_toy_file_round_trips_the_toy_reader(toy_files, tmp_path):
    """init on the toy's own files writes the reader mapping of config/config.yaml's toy
    reader, its inputs and its constituent sort order; the classes are the files'."""
    lines = write_starter(toy_sources(toy_files), tmp_path)
    raw = yaml.safe_load((tmp_path / "config.yaml").read_text())
    toy = default_config()
    (reader,) = raw["readers"].values()
    assert reader.pop("unit") == DEFAULT_UNIT and "unit" not in toy["readers"]["toy"]
    assert reader == toy["readers"]["toy"]
    assert raw["inputs"]["variables"] == toy["inputs"]["variables"]
    assert raw["inputs"]["transforms"] == toy["inputs"]["transforms"]
    assert raw["convert"]["sort_by"] == toy["convert"]["sort_by"]
    assert raw["class_names"] == ["qcd", "bib", "sig"] and raw["evaluate"]["signal"] == "sig"
    assert "label_map" not in raw["prepare"] and raw["models"] == ["baseline"]
    config = validate(copy.deepcopy(raw))
    assert [(s["name"], s["label"]) for s in config["samples"]] == [
        ("qcd", "qcd"),
        ("bib", "bib"),
        ("sig_mS5", "sig"),
        ("sig_mS16", "sig"),
    ]
    assert any("classes from the files" in line for line in lines)


def test_one_toy_file_asks_for_classes_in_one_line(toy_files, tmp_path, capsys):
    path = str(toy_files["qcd"])
    assert main(["init", "--from", path, "--out", str(tmp_path / "cfg")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err
    assert "no truth-label branch" in err and "no candidate" in err
    assert "--from CLASS=FILE" in err
    assert not (tmp_path / "cfg").exists()
    bad = f"1sig={toy_files['sig_mS5']}"
    assert main(["init", "--from", f"qcd={path}", bad, "--out", str(tmp_path / "c2")]) == 1
    assert "a class name is a letter" in capsys.readouterr().err


def calratio_branches(n: int, seed: int, label: str = "jet_category") -> dict[str, Any]:
    """A CalRatio-style per-jet ntuple: lowercase ``jet_`` branches, tracks (``track_``),
    clusters (``clus_``) and muon segments (``MSeg_``) as lists per jet, an event number, a
    weight, a run number of one value and an integer jet category (0, 1, 2) under ``label``."""
    rng = np.random.default_rng(seed)
    category = rng.integers(0, 3, n)
    lists = {}
    for prefix, fields in (
        ("track", ("pt", "eta", "d0")),
        ("clus", ("e", "time")),
        ("MSeg", ("etaPos",)),
    ):
        counts = rng.integers(0, 6, n)
        lists[prefix] = ak.unflatten(
            ak.zip(
                {f: rng.normal(1 + category.repeat(counts), 1).astype(np.float32) for f in fields}
            ),
            counts,
        )
    return {
        "jet_pt": rng.uniform(25, 200, n).astype(np.float32),
        "jet_eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "jet_phi": rng.uniform(-3, 3, n).astype(np.float32),
        "jet_EMFrac": (rng.random(n) * (1 + category) / 3).astype(np.float32),
        label: category.astype(np.int32),
        "eventNumber": np.repeat(np.arange(n // 2 + 1), 2)[:n].astype(np.int64),
        "runNumber": np.full(n, 410470, dtype=np.int32),
        "mcEventWeight": rng.normal(1, 0.1, n).astype(np.float32),
        **lists,
    }


def test_calratio_per_jet_ntuple_asks_for_a_label_then_converts(tmp_path, capsys):
    """Per-jet entries with lowercase prefixes: collections by prefix, the weight and event
    number found; no known label name, so one line names the candidate branch; --label
    gives one class per value."""
    path = tmp_path / "calratio.root"
    write_root(calratio_branches(400, 1), path, "trees_DV_")
    assert main(["init", "--from", str(path), "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert "--label BRANCH (candidates: jet_category)" in err
    assert (
        main(["init", "--from", str(path), "--label", "jet_nope", "--out", str(tmp_path / "b")])
        == 1
    )
    assert "no per-jet branch 'jet_nope'" in capsys.readouterr().err
    out = tmp_path / "cfg"
    assert main(["init", "--from", str(path), "--label", "jet_category", "--out", str(out)]) == 0
    raw = yaml.safe_load((out / "config.yaml").read_text())
    reader = raw["readers"]["flat"]
    assert reader["tree"] == "trees_DV_" and reader["entry"] == "jet"
    assert reader["jets"] == {
        "pt": "jet_pt",
        "eta": "jet_eta",
        "phi": "jet_phi",
        "EMFrac": "jet_EMFrac",
        "runNumber": "runNumber",
        "category": "jet_category",
        "mcEventWeight": "mcEventWeight",
        "eventNumber": "eventNumber",
    }
    assert reader["collections"] == {
        "tracks": {"pt": "track_pt", "eta": "track_eta", "d0": "track_d0"},
        "clusters": {"e": "clus_e", "time": "clus_time"},
        "segments": {"etaPos": "MSeg_etaPos"},
    }
    # the run number holds one value: stored, never an input
    assert raw["inputs"]["variables"]["jets"] == ["pt", "eta", "EMFrac"]
    assert raw["class_names"] == ["category_0", "category_1", "category_2"]
    assert raw["prepare"]["label_map"] == {
        "variable": "category",
        "map": {"category_0": [0], "category_1": [1], "category_2": [2]},
    }
    config = validate(copy.deepcopy(raw))
    convert(
        stage(config, "convert", sample="calratio"),
        tmp_path / "s.h5",
        tmp_path / "s.json",
        show_progress=False,
    )
    with h5py.File(tmp_path / "s.h5") as h5:
        assert sorted(h5) == ["clusters", "jets", "segments", "tracks"]
        assert len(h5["jets"]) == 400


def test_known_label_name_in_any_case_is_found(tmp_path):
    path = tmp_path / "upper.root"
    branches = calratio_branches(300, 2, label="JET_LABEL")
    branches = {k.replace("jet_", "JET_"): v for k, v in branches.items()}
    write_root(branches, path, "jets")
    lines = write_starter(str(path), tmp_path / "cfg")
    raw = yaml.safe_load((tmp_path / "cfg" / "config.yaml").read_text())
    assert raw["readers"]["flat"]["jets"]["pt"] == "JET_pt"
    assert raw["prepare"]["label_map"]["variable"] == "LABEL"
    assert raw["class_names"] == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert raw["evaluate"]["signal"] == "LABEL_2"
    assert any("label JET_LABEL" in line for line in lines)


def test_per_event_ntuple_lists_per_jet_and_linked_collections(tmp_path):
    """Jet branches jagged per event (lowercase, an RNTuple): tracks as lists per jet
    (var * var), clusters per event attached by their jet index, muon segments with no index
    left out."""
    path = tmp_path / "events.root"
    tracks = [[[1.0], []], [[2.0, 3.0]], [[4.0, 5.0, 6.0], [7.0], []]]  # per event, per jet
    fields = {
        "jet_pt": [[30.0, 40.0], [50.0], [60.0, 70.0, 80.0]],
        "jet_eta": [[0.0, 0.1], [0.2], [0.3, 0.4, 0.5]],
        "jet_phi": [[0.0, 0.1], [0.2], [0.3, 0.4, 0.5]],
        "jet_truthLabel": [[0, 1], [1], [0, 1, 0]],
        "jet_track_pt": tracks,
        "clus_e": [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0]],
        "clus_jetIdx": [[0, 1, 1], [-1], [2, 0]],  # per cluster: its jet in the event
        "MSeg_eta": [[0.1], [], [0.2, 0.3]],
        "eventNumber": [11, 12, 13],
    }
    with uproot.recreate(path) as f:
        f.mkrntuple("events", ak.Array(fields))
    lines = write_starter(str(path), tmp_path / "cfg")
    raw = yaml.safe_load((tmp_path / "cfg" / "config.yaml").read_text())
    reader = raw["readers"]["flat"]
    assert reader["entry"] == "event"
    assert reader["collections"] == {
        "tracks": {"pt": "jet_track_pt"},
        "clusters": {"link": {"constituent_side": "clus_jetIdx"}, "variables": {"e": "clus_e"}},
    }
    assert raw["convert"]["max_constituents"] == {"tracks": 3, "clusters": 2}
    assert raw["prepare"]["label_map"]["variable"] == "truthLabel"
    assert any("MSeg_* lists are per event with no jet index" in line for line in lines)
    config = validate(copy.deepcopy(raw))
    convert(
        stage(config, "convert", sample="events"),
        tmp_path / "s.h5",
        tmp_path / "s.json",
        show_progress=False,
    )
    with h5py.File(tmp_path / "s.h5") as h5:
        assert h5["tracks"]["valid"].sum(axis=1).tolist() == [1, 0, 2, 3, 1, 0]
        assert h5["clusters"]["valid"].sum(axis=1).tolist() == [1, 2, 0, 1, 0, 1]


def test_tree_choice_and_missing_jets_are_one_line(tmp_path, capsys):
    path = tmp_path / "two.root"
    jets = calratio_branches(50, 3)
    with uproot.recreate(path) as f:
        for tree in ("nominal", "JES_up"):
            f.mktree(
                tree,
                {
                    k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                    for k, v in jets.items()
                },
            )
            f[tree].extend(jets)
        f["meta"] = {"x": np.arange(3)}
    assert main(["init", "--from", str(path), "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert "jet branches in several trees (nominal, JES_up): choose one with --tree" in err
    out = tmp_path / "b"
    argv = ["init", "--from", str(path), "--tree", "JES_up", "--label", "jet_category"]
    assert main([*argv, "--out", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["readers"]["flat"]["tree"] == "JES_up"
    assert main(["init", "--from", str(path), "--tree", "meta", "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "no jet branches" in err


# ---- acceptance: init, then the whole DAG to report.md (slow) ----


def run_to_report(workdir: Path, config: Path, max_epochs: int) -> str:
    """Snakemake to results/report.md on ``config`` with ``max_epochs`` (an ``extends``
    override, as config/README.md documents); the report's text."""
    run = workdir / "run.yaml"
    overrides = {"extends": str(config), "training_overrides": {"max_epochs": max_epochs}}
    run.write_text(yaml.safe_dump(overrides))
    snakemake(workdir, "--cores", "2", "results/report.md", "--configfile", str(run))
    return (workdir / "results" / "report.md").read_text()


@pytest.mark.slow
def test_toy_init_config_runs_to_the_report(toy_files, workdir):
    out = workdir / "mine"
    assert main(["init", "--from", *toy_sources(toy_files), "--out", str(out)]) == 0
    report = run_to_report(workdir, out / "config.yaml", max_epochs=1)
    assert "| classes | qcd, bib, sig |" in report and "| signal | sig |" in report


# NanoAOD-like samples with NLO weights (genWeight ±2.26e5, 13 % of events negative): two
# ttbar files and a W+jets file; c jets (3 %) are the rare class
NLO_SAMPLES = {
    "ttbar_1": (500, 1, {0: 0.71, 4: 0.03, 5: 0.26}),
    "ttbar_2": (500, 2, {0: 0.71, 4: 0.03, 5: 0.26}),
    "wjets": (500, 3, {0: 0.94, 4: 0.03, 5: 0.03}),
}


def leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, f"{key}/{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, f"{key}[{i}]")]
    return [(key, value)]


def shown(fraction: float, report: str) -> bool:
    """Whether ``report`` prints ``fraction`` (as a fraction or a percentage)."""
    forms = [fmt(fraction), f"{fraction:.3f}", f"{fraction:.2f}"]
    forms += [f"{100 * fraction:.{d}f}{s}%" for d in (0, 1, 2) for s in ("", " ")]
    return any(form in report for form in forms)


@pytest.mark.slow
def test_nlo_nanoaod_like_runs_to_the_report(workdir):
    files = []
    for name, (events, seed, fractions) in NLO_SAMPLES.items():
        files.append(str(workdir / f"{name}.root"))
        branches = nanoaod.nanoaod_like(events, seed, fractions, first_event=seed * 10**6)
        write_root(branches, files[-1], nanoaod.TREE)
    out = workdir / "mine"
    assert main(["init", "--from", *files, "--out", str(out)]) == 0
    raw = yaml.safe_load((out / "config.yaml").read_text())
    assert raw["class_names"] == ["ujets", "cjets", "bjets"]
    assert raw["readers"]["nanoaod"]["jets"]["mcEventWeight"] == "genWeight"
    report = run_to_report(workdir, out / "config.yaml", max_epochs=3)
    results = workdir / "results"
    for path in [*results.glob("metrics/*.json"), *results.glob("models/*/metrics.json")]:
        metrics = json.loads(path.read_text())
        metrics.pop("roc_curves", None)  # curves start where no background passes: infinite
        for key, value in leaves(metrics):
            assert value is not None, f"{path}: {key} is null (non-finite)"
            assert not isinstance(value, float) or math.isfinite(value), (path, key, value)
    assert not re.search(r"\b(nan|inf)\b", report, re.I)
    policy = validate(copy.deepcopy(raw))["prepare"].get("negative_weights")
    assert policy, "no prepare.negative_weights policy in the validated config"
    assert str(policy) in report
    for name in NLO_SAMPLES:
        with h5py.File(results / "h5" / f"{name}.h5") as h5:
            weights = h5["jets"]["weight"]
        fraction = float(np.mean(weights < 0))
        assert 0.08 < fraction < 0.18
        summary = json.loads((results / "h5" / f"{name}.summary.json").read_text())
        assert summary["negative_weights"]["fraction"] == pytest.approx(fraction)
        assert shown(fraction, report), (name, fraction)
    assert "cjets" in report.split("## Warnings", 1)[1]
