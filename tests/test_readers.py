"""Readers on real and hand-made files: flat expressions and cuts over raw branches,
index-linked collections (NanoAOD), PHYSLITE event-number fallback and b-tagging links,
energy units, unexpected shapes and skip_bad_files."""

import json
import logging

import awkward as ak
import h5py
import numpy as np
import pytest
import skhep_testdata
import uproot
from conftest import stage

from hepsnake.config import validate
from hepsnake.config.contracts import reader
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.io.physlite import PhysliteSource
from hepsnake.io.root import FlatSource

NANO = "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root"
HZZ = "uproot-HZZ.root"
RNTUPLE = "uproot-physlite-rntuple_v1-0-0-0.root"
OLD_TTREE = "uproot-issue-798.root"


def data(name):
    return skhep_testdata.data_path(name)


def config_for(readers, samples, **convert_keys):
    """A validated config with no toy keys: two classes, the given readers and samples."""
    return validate(
        {
            "class_names": ["light", "b"],
            "samples": samples,
            "readers": readers,
            "convert": convert_keys,
            "inputs": {"variables": {"jets": ["pt"]}},
            "prepare": {"weights": {"mode": "none", "target": "b"}},
            "evaluate": {"signal": "b"},
        }
    )


def convert_one(config, tmp_path, name="s"):
    out, summary = tmp_path / f"{name}.h5", tmp_path / f"{name}.json"
    report = convert(stage(config, "convert", sample=name), out, summary, show_progress=False)
    assert json.loads(summary.read_text()) == json.loads(json.dumps(report))
    return out, report


def collect(source, step=3):
    chunks = [c for _, c in source.chunks(step)]
    jets = {k: np.concatenate([c.jets[k] for c in chunks]) for k in chunks[0].jets}
    colls = {}
    for name in chunks[0].collections:
        counts = np.concatenate([c.collections[name].counts for c in chunks])
        fields = chunks[0].collections[name].fields
        colls[name] = (
            counts,
            {k: np.concatenate([c.collections[name].fields[k] for c in chunks]) for k in fields},
        )
    return jets, colls


# --- flat: expressions and cuts -------------------------------------------------------------


def test_flat_expressions_and_cut_on_a_raw_branch(tmp_path):
    reader = {
        "type": "flat",
        "tree": "events",
        "entry": "event",
        "jets": {
            "pt": "hypot(Jet_Px, Jet_Py)",
            "eta": "arcsinh(Jet_Pz / hypot(Jet_Px, Jet_Py))",
            "weighted_btag": "Jet_btag * EventWeight",
            "mcEventWeight": "EventWeight",
        },
    }
    samples = [{"name": "s", "files": [data(HZZ)], "reader": "hzz", "label": "light"}]
    config = config_for({"hzz": reader}, samples, cuts=["pt > 30", "Jet_ID > 0"])
    out, report = convert_one(config, tmp_path)
    t = uproot.open(data(HZZ))["events"].arrays(
        ["Jet_Px", "Jet_Py", "Jet_Pz", "Jet_ID", "Jet_btag", "EventWeight"]
    )
    pt = np.hypot(ak.flatten(t.Jet_Px), ak.flatten(t.Jet_Py)).to_numpy()
    keep = (pt > 30) & ak.flatten(t.Jet_ID).to_numpy()
    with h5py.File(out) as h5:
        jets = h5["jets"][:]
        assert h5["jets"].attrs["energy_unit"] == "GeV"
    assert len(jets) == keep.sum() and 0 < keep.sum() < len(pt)
    np.testing.assert_allclose(jets["pt"], pt[keep], rtol=1e-6)
    weight = np.repeat(t.EventWeight.to_numpy(), ak.num(t.Jet_Px).to_numpy())
    btag = ak.flatten(t.Jet_btag).to_numpy()
    np.testing.assert_allclose(jets["weighted_btag"], (btag * weight)[keep], rtol=1e-6)
    assert "Jet_ID" not in jets.dtype.names  # read for the cut only
    assert report["dropped"] == {"cuts": int(len(pt) - keep.sum())}
    assert report["cuts"] == {"pt > 30": int((pt <= 30).sum()), "Jet_ID > 0": 49}
    assert report["energy_unit"] == "GeV" and report["event_number_source"] == ["entry index"]


def test_flat_expression_reading_a_missing_branch_names_it(tmp_path):
    reader = {
        "type": "flat",
        "tree": "events",
        "entry": "event",
        "jets": {"pt": "hypot(Jet_Px, Jet_Qy)"},
    }
    config = config_for({"r": reader}, [{"name": "s", "files": [data(HZZ)], "reader": "r"}])
    with pytest.raises(HepsnakeError, match="missing branch 'Jet_Qy'"):
        convert_one(config, tmp_path)
    assert not list(tmp_path.iterdir())


# --- flat: index-linked collections ---------------------------------------------------------


def nano_reader(**collections):
    return {
        "type": "flat",
        "tree": "Events",
        "entry": "event",
        "jets": {
            "pt": "Jet_pt",
            "eta": "Jet_eta",
            "hadronFlavour": "Jet_hadronFlavour",
            "eventNumber": "event",
        },
        "collections": collections,
    }


def test_nanoaod_muons_and_electrons_by_index_both_sides():
    spec = nano_reader(
        muons={
            "link": {"jet_side": ["Jet_muonIdx1", "Jet_muonIdx2"]},
            "variables": {"pt": "Muon_pt", "eta": "Muon_eta"},
        },
        muons_b={"link": {"constituent_side": "Muon_jetIdx"}, "variables": {"pt": "Muon_pt"}},
        electrons={
            "link": {"jet_side": ["Jet_electronIdx1", "Jet_electronIdx2"]},
            "variables": {"pt": "Electron_pt"},
        },
        electrons_b={
            "link": {"constituent_side": "Electron_jetIdx"},
            "variables": {"pt": "Electron_pt"},
        },
    )
    jets, colls = collect(FlatSource(data(NANO), reader(spec)), step=3)
    assert len(jets["pt"]) == 75
    raw = uproot.open(data(NANO))["Events"].arrays(
        [
            "Jet_muonIdx1",
            "Jet_muonIdx2",
            "Muon_pt",
            "Muon_jetIdx",
            "Jet_electronIdx1",
            "Jet_electronIdx2",
            "Electron_pt",
            "Electron_jetIdx",
        ]
    )
    for obj, coll in (("muon", "muons"), ("electron", "electrons")):
        prefix = obj.capitalize()
        by_hand, by_hand_b = [], []  # per jet, the pts of its objects, looked up one by one
        for ev in range(len(raw)):
            pts = raw[f"{prefix}_pt"][ev].tolist()
            idx1, idx2 = raw[f"Jet_{obj}Idx1"][ev].tolist(), raw[f"Jet_{obj}Idx2"][ev].tolist()
            owner = raw[f"{prefix}_jetIdx"][ev].tolist()
            for j, (a, b) in enumerate(zip(idx1, idx2, strict=True)):
                by_hand.append([pts[i] for i in (a, b) if i >= 0])
                by_hand_b.append([p for p, o in zip(pts, owner, strict=True) if o == j])
        for name, expected in ((coll, by_hand), (f"{coll}_b", by_hand_b)):
            counts, fields = colls[name]
            np.testing.assert_array_equal(counts, [len(e) for e in expected])
            np.testing.assert_allclose(fields["pt"], [p for e in expected for p in e])
        assert colls[coll][0].sum() > 0
    assert colls["muons"][0].sum() == 4 and colls["electrons"][0].sum() == 11


def test_linked_collection_on_a_hand_made_file(tmp_path):
    """Two events; the expected attachment is written out by hand."""
    path = tmp_path / "linked.root"
    with uproot.recreate(path) as f:
        f["Events"] = {
            "Jet_pt": ak.Array([[50.0, 40.0, 30.0], [20.0, 25.0]]),
            "Jet_lepIdx1": ak.Array([[1, -1, 0], [-1, 2]]),
            "Jet_lepIdx2": ak.Array([[2, -1, -1], [-1, 0]]),
            "Lep_pt": ak.Array([[5.0, 6.0, 7.0], [8.0, 9.0, 10.0]]),
            "Lep_jetIdx": ak.Array([[2, 0, 0], [1, -1, 1]]),
        }
    spec = {
        "type": "flat",
        "tree": "Events",
        "entry": "event",
        "jets": {"pt": "Jet_pt"},
        "collections": {
            "a": {
                "link": {"jet_side": ["Jet_lepIdx1", "Jet_lepIdx2"]},
                "variables": {"pt": "Lep_pt"},
            },
            "b": {"link": {"constituent_side": "Lep_jetIdx"}, "variables": {"pt": "Lep_pt * 2"}},
        },
    }
    for step in (1, 10):
        _, colls = collect(FlatSource(str(path), reader(spec)), step=step)
        np.testing.assert_array_equal(colls["a"][0], [2, 0, 1, 0, 2])
        np.testing.assert_array_equal(colls["a"][1]["pt"], [6.0, 7.0, 5.0, 10.0, 8.0])
        np.testing.assert_array_equal(colls["b"][0], [2, 0, 1, 0, 2])
        np.testing.assert_array_equal(colls["b"][1]["pt"], [12.0, 14.0, 10.0, 16.0, 20.0])
    # through convert: padded (N, max) with valid, cuts applied to the jets
    samples = [{"name": "s", "files": [str(path)], "reader": "r"}]
    config = config_for({"r": spec}, samples, cuts=["pt > 22"], max_constituents={"a": 3})
    out, _ = convert_one(config, tmp_path)
    with h5py.File(out) as h5:
        a = h5["a"][:]
        assert a.shape == (4, 3)
        np.testing.assert_array_equal(a["valid"].sum(axis=1), [2, 0, 1, 2])
        np.testing.assert_array_equal(a["pt"][0, :2], [6.0, 7.0])
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:
        f["Events"] = {
            "Jet_pt": ak.Array([[50.0]]),
            "Jet_lepIdx1": ak.Array([[3]]),
            "Jet_lepIdx2": ak.Array([[-1]]),
            "Lep_pt": ak.Array([[5.0]]),
            "Lep_jetIdx": ak.Array([[0]]),
        }
    with pytest.raises(
        HepsnakeError, match=r"collections\.a: 'Jet_lepIdx1' index 3 is out of range"
    ):
        collect(FlatSource(str(bad), reader(spec)))


# --- unexpected shapes, skip_bad_files ------------------------------------------------------


def test_jagged_branch_where_a_jet_scalar_is_expected(tmp_path):
    good, bad = tmp_path / "good.root", tmp_path / "bad.root"
    with uproot.recreate(good) as f:
        f["jets"] = {"jet_pt": np.array([30.0, 40.0, 50.0]), "jet_w": np.ones(3)}
    with uproot.recreate(bad) as f:
        f["jets"] = {"jet_pt": np.array([30.0, 40.0]), "jet_w": ak.Array([[1.0, 2.0], [3.0]])}
    reader = {"type": "flat", "tree": "jets", "jets": {"pt": "jet_pt", "w": "jet_w"}}
    samples = [{"name": "s", "files": [str(good), str(bad)], "reader": "r"}]
    config = config_for({"r": reader}, samples)
    with pytest.raises(HepsnakeError) as info:
        convert_one(config, tmp_path)
    message = str(info.value)
    assert str(bad) in message and "jets.w" in message and "'jet_w' is jagged" in message
    assert "\n" not in message
    assert not (tmp_path / "s.h5").exists()
    config = config_for({"r": reader}, samples, skip_bad_files=True)
    _, report = convert_one(config, tmp_path)
    assert [s["path"] for s in report["skipped"]] == [str(bad)]
    assert "is jagged" in report["skipped"][0]["reason"]
    assert report["jets"] == 3


def test_any_per_file_failure_is_skipped(tmp_path, monkeypatch):
    """Not only HepsnakeError: an unexpected exception in one file skips that file."""
    import hepsnake.io.root as root

    files = []
    for i in range(2):
        files.append(tmp_path / f"f{i}.root")
        with uproot.recreate(files[-1]) as f:
            f["jets"] = {"jet_pt": np.array([30.0, 40.0]) + i}
    original = root.FlatSource._to_chunk

    def flaky(self, arrays, offset):
        if self.path.endswith("f1.root"):
            raise ValueError("operands could not be broadcast together")
        return original(self, arrays, offset)

    monkeypatch.setattr(root.FlatSource, "_to_chunk", flaky)
    reader = {"type": "flat", "tree": "jets", "jets": {"pt": "jet_pt"}}
    samples = [{"name": "s", "files": [str(p) for p in files], "reader": "r"}]
    with pytest.raises(HepsnakeError, match=r"f1.root: cannot convert \(ValueError: operands"):
        convert_one(config_for({"r": reader}, samples), tmp_path)
    _, report = convert_one(config_for({"r": reader}, samples, skip_bad_files=True), tmp_path)
    assert report["jets"] == 2 and len(report["skipped"]) == 1


# --- PHYSLITE: unsplit EventInfo, b-tagging links, units ------------------------------------


def write_physlite(path, event_info):
    """A small PHYSLITE-like TTree (jets, tracks, no GhostTrack) with the given EventInfo."""
    branches = {
        "AnalysisJetsAuxDyn.pt": ak.Array([[30000.0, 40000.0], [50000.0], [15000.0, 60000.0]]),
        "AnalysisJetsAuxDyn.eta": ak.Array([[0.1, -0.2], [0.3], [1.0, -1.5]]),
        "AnalysisJetsAuxDyn.phi": ak.Array([[0.0, 1.0], [2.0], [-1.0, 3.0]]),
        "InDetTrackParticlesAuxDyn.theta": ak.Array([[1.5, 1.7], [1.2], []]),
        "InDetTrackParticlesAuxDyn.phi": ak.Array([[0.05, 1.1], [2.1], []]),
        "InDetTrackParticlesAuxDyn.qOverP": ak.Array([[1e-4, -2e-4], [1e-4], []]),
    }
    branches |= event_info
    with uproot.recreate(path) as f:  # a TTree, as the PHYSLITE files
        tree = f.mktree(
            "CollectionTree",
            {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()},
        )
        tree.extend(branches)


PHYSLITE_SPEC = {"type": "physlite", "jets": ["pt", "eta", "phi"], "tracks": ["pt", "dr"]}


@pytest.mark.parametrize(
    ("event_info", "source", "numbers"),
    [
        ({"EventInfoAux.": np.array([7, 8, 9])}, "entry index", [0, 0, 1, 2, 2]),
        (
            {"EventInfoAux.": np.zeros(3), "EventInfoAuxDyn.mcEventNumber": np.array([11, 12, 13])},
            "EventInfoAuxDyn.mcEventNumber",
            [11, 11, 12, 13, 13],
        ),
    ],
)
def test_unsplit_event_info_falls_back(tmp_path, event_info, source, numbers):
    path = tmp_path / "unsplit.root"
    write_physlite(path, event_info)
    assert not any(
        "eventNumber" in k for k in uproot.open(path)["CollectionTree"].keys(recursive=True)
    )
    samples = [{"name": "s", "files": [str(path)], "reader": "p", "label": "b"}]
    config = config_for({"p": PHYSLITE_SPEC}, samples)
    out, report = convert_one(config, tmp_path)
    assert report["event_number_source"] == [source]
    assert report["files"][0]["event_number_source"] == source
    with h5py.File(out) as h5:
        np.testing.assert_array_equal(h5["jets"]["eventNumber"], numbers)
        assert h5["jets"].attrs["energy_unit"] == "MeV"


def test_old_physlite_file_records_its_event_number_branch(tmp_path):
    source = PhysliteSource(data(OLD_TTREE), reader({"type": "physlite"}))
    assert source.event_number_source == "EventInfoAux./EventInfoAux.eventNumber"


def test_mev_cut_that_keeps_everything_is_warned(tmp_path, caplog):
    path = tmp_path / "p.root"
    write_physlite(path, {"EventInfoAuxDyn.mcEventNumber": np.array([1, 2, 3])})
    samples = [{"name": "s", "files": [str(path)], "reader": "p", "label": "b"}]
    with caplog.at_level(logging.WARNING, logger="hepsnake"):
        convert_one(config_for({"p": PHYSLITE_SPEC}, samples, cuts=["pt > 20"]), tmp_path)
    assert "cut 'pt > 20' kept every jet: pt is in MeV" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hepsnake"):
        _, report = convert_one(
            config_for({"p": PHYSLITE_SPEC}, samples, cuts=["pt > 20000"]), tmp_path
        )
    assert "kept every jet" not in caplog.text and report["dropped"] == {"cuts": 1}


BTAG = {  # file: (b-tagging container, scores, branch separator)
    RNTUPLE: (
        "BTagging_AntiKt4EMPFlow",
        ["GN2v01_pb", "GN2v01_pc", "GN2v01_pu", "GN2v01_ptau"],
        ":",
    ),
    "uproot-issue-951.root": (
        "BTagging_AntiKt4EMPFlow",
        ["DL1dv01_pb", "DL1dv01_pc", "DL1dv01_pu"],
        ".",
    ),
}


@pytest.fixture(scope="module", params=list(BTAG))
def btag_read(request):
    container, variables, sep = BTAG[request.param]
    spec = {"btagging": {"container": container, "variables": variables}}
    source = PhysliteSource(data(request.param), reader({"type": "physlite", **spec}))
    jets, _ = collect(source, step=7)
    link = f"AnalysisJetsAuxDyn{sep}btaggingLink"
    scores = [f"{container}AuxDyn{sep}{v}" for v in variables]
    if sep == ":":  # RNTuple: one record field
        raw = source.tree.arrays([link, *scores])
        index = raw[link]["m_persIndex"]
    else:  # TTree: the link is split into member branches
        raw = source.tree.arrays([f"{link}/{link}.m_persIndex", *scores])
        index = raw[f"{link}/{link}.m_persIndex"]
    return request.param, variables, jets, index, raw[scores[0]]


def test_btagging_scores_through_the_link(btag_read):
    name, variables, jets, links, first_score = btag_read
    scores = np.stack([jets[v] for v in variables], axis=1)
    assert scores.shape[0] == len(ak.flatten(links))
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-3)
    n_jets = ak.num(links).to_numpy()
    first_jet = np.concatenate([[0], np.cumsum(n_jets)[:-1]])
    moved = 0
    for event in range(len(links)):
        for j in range(n_jets[event]):
            i = int(links[event][j])
            moved += i != j
            looked_up = first_score[event][i]
            assert jets[variables[0]][first_jet[event] + j] == np.float32(looked_up)
    # the RNTuple file's b-tagging objects are not in jet order: there the link matters
    assert (moved > 0) == (name == RNTUPLE)
