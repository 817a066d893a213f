"""`hepsnake init --from FILE --out DIR` on each real file: a standalone config whose reader
converts that file, with labels, reference taggers and units taken from the file."""

import copy
import shutil
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import skhep_testdata
import uproot
import yaml
from conftest import stage

from hepsnake.cli import main
from hepsnake.config import validate
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.init.starter import class_masks, write_starter
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.split import SPLITS

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
