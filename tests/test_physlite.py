"""PhysliteSource on the three real PHYSLITE files, checked against plain uproot/awkward reads."""

import math
from collections import Counter
from typing import Any

import awkward as ak
import numpy as np
import pytest
import skhep_testdata
import uproot

import hepsnake.io.physlite as physlite
import hepsnake.io.root as root
from hepsnake.config.contracts import reader
from hepsnake.errors import HepsnakeError
from hepsnake.io.physlite import PhysliteSource

RNTUPLE = "uproot-physlite-rntuple_v1-0-0-0.root"
TTREE = "uproot-issue-951.root"
OLD_TTREE = "uproot-issue-798.root"
KEY = 490246363

# file: (tree, branch separator, events, jets, HadronConeExclTruthLabelID counts, kept links).
# Label counts of the two TTree files and the link counts were observed once with plain uproot;
# test_reference_counts re-derives them independently of PhysliteSource.
FILES: dict[str, tuple[str, str, int, int, dict[int, int], int]] = {
    RNTUPLE: ("EventData", ":", 100, 881, {0: 613, 4: 58, 5: 194, 15: 16}, 2154),
    TTREE: ("CollectionTree", ".", 50, 455, {0: 319, 4: 32, 5: 88, 15: 16}, 1130),
    OLD_TTREE: ("CollectionTree", ".", 40, 372, {0: 266, 4: 22, 5: 72, 15: 12}, 169),
}


def data(name: str) -> str:
    """Local path of a scikit-hep-testdata file (fetched once, then cached)."""
    return skhep_testdata.data_path(name)


DEFAULTS = reader({"type": "physlite"})


def lite(path: str, options: dict[str, Any]) -> PhysliteSource:
    """A PHYSLITE source of ``path`` with a reader of ``options`` (validated, defaults filled)."""
    return PhysliteSource(path, reader({"type": "physlite", **options}))


def collect(source: PhysliteSource, step: int) -> dict[str, Any]:
    """Concatenate every chunk of ``source`` read in blocks of ``step`` events."""
    events, jets, counts, tracks = 0, [], [], []
    for n_events, chunk in source.chunks(step):
        events += n_events
        jets.append(chunk.jets)
        counts.append(chunk.collections["tracks"].counts)
        tracks.append(chunk.collections["tracks"].fields)
    return {
        "events": events,
        "jets": {k: np.concatenate([j[k] for j in jets]) for k in jets[0]},
        "counts": np.concatenate(counts),
        "tracks": {k: np.concatenate([t[k] for t in tracks]) for k in tracks[0]},
    }


def plain(name: str, tree: Any) -> ak.Array:
    """The branches the checks need, read with plain uproot calls (no hepsnake code).

    ``tree`` is the uproot object the source opened: parsing the RNTuple header takes seconds.
    """
    sep = FILES[name][1]
    info = "EventInfoAux./EventInfoAux." if name == OLD_TTREE else f"EventInfoAuxDyn{sep}"
    names = {
        "label": f"AnalysisJetsAuxDyn{sep}HadronConeExclTruthLabelID",
        "links": f"AnalysisJetsAuxDyn{sep}GhostTrack",
        "theta": f"InDetTrackParticlesAuxDyn{sep}theta",
        "event": f"{info}eventNumber",
        "weights": f"EventInfoAuxDyn{sep}mcEventWeights",
    }
    arrays = tree.arrays(list(names.values()))
    return ak.zip({k: arrays[v] for k, v in names.items()}, depth_limit=1)


@pytest.fixture(scope="module", params=list(FILES))
def read(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each file read once by PhysliteSource (steps 7 and 1000) and once with plain uproot."""
    name = request.param
    source = lite(data(name), {})
    return {
        "name": name,
        "source": source,
        "small": collect(source, 7),
        "big": collect(source, 1000),
        "plain": plain(name, source.tree),
    }


def test_tree_and_branches_detected(read: dict[str, Any]) -> None:
    source = read["source"]
    tree_name, sep, events, *_ = FILES[read["name"]]
    assert source.tree.name == tree_name
    assert source.num_entries == events == read["small"]["events"]
    assert source.links == f"AnalysisJetsAuxDyn{sep}GhostTrack"
    old = read["name"] == OLD_TTREE
    assert source.event_number == (
        "EventInfoAux./EventInfoAux.eventNumber" if old else f"EventInfoAuxDyn{sep}eventNumber"
    )


def test_jets_and_labels(read: dict[str, Any]) -> None:
    _, _, _, n_jets, labels, _ = FILES[read["name"]]
    jets = read["small"]["jets"]
    assert set(jets) == {*DEFAULTS.jets, "eventNumber", "mcEventWeight"}
    assert all(len(v) == n_jets for v in jets.values())
    assert dict(Counter(jets["HadronConeExclTruthLabelID"].tolist())) == labels
    assert jets["mcEventWeight"].dtype == np.float32
    assert jets["eventNumber"].dtype in (np.uint64, np.int64)


def test_reference_counts(read: dict[str, Any]) -> None:
    """The hard-coded label and link counts, re-derived with plain awkward."""
    _, _, _, n_jets, labels, n_links = FILES[read["name"]]
    ref = read["plain"]
    assert len(ak.flatten(ref.label)) == n_jets
    assert dict(Counter(ak.flatten(ref.label).tolist())) == labels
    kept = (ref.links.m_persKey == KEY) & (ref.links.m_persIndex < ak.num(ref.theta))
    assert ak.sum(kept) == n_links


def test_event_columns_match_plain_read(read: dict[str, Any]) -> None:
    ref, jets = read["plain"], read["small"]["jets"]
    per_jet = ak.num(ref.label)
    np.testing.assert_array_equal(jets["eventNumber"], np.repeat(ak.to_numpy(ref.event), per_jet))
    first_weight = ak.to_numpy(ak.fill_none(ak.firsts(ref.weights), 1.0))
    np.testing.assert_array_equal(jets["mcEventWeight"], np.repeat(first_weight, per_jet))


def test_ghost_tracks_match_plain_links(read: dict[str, Any]) -> None:
    ref, out = read["plain"], read["small"]
    *_, n_links = FILES[read["name"]]
    counts = out["counts"]
    assert (counts >= 0).all()
    assert counts.sum() == n_links
    assert all(len(v) == n_links for v in out["tracks"].values())
    kept = (ref.links.m_persKey == KEY) & (ref.links.m_persIndex < ak.num(ref.theta))
    np.testing.assert_array_equal(counts, ak.to_numpy(ak.flatten(ak.sum(kept, axis=2))))
    # the theta of each linked track, looked up per event by awkward jagged indexing
    index = ak.flatten(ref.links.m_persIndex[kept], axis=2)
    theta = ak.to_numpy(ak.flatten(ref.theta[index]))
    np.testing.assert_array_equal(out["tracks"]["theta"], theta)


def test_derived_track_variables(read: dict[str, Any]) -> None:
    tracks = read["small"]["tracks"]
    assert set(tracks) == set(DEFAULTS.tracks)
    for i in range(5):
        theta, q_over_p = float(tracks["theta"][i]), float(tracks["qOverP"][i])
        assert tracks["pt"][i] == pytest.approx(abs(math.sin(theta) / q_over_p), rel=1e-6)
        assert tracks["eta"][i] == pytest.approx(-math.log(math.tan(theta / 2)), rel=1e-6)
    assert (tracks["pt"] > 0).all()
    assert ((tracks["dphi"] >= -np.pi) & (tracks["dphi"] <= np.pi)).all()
    np.testing.assert_allclose(tracks["dr"], np.hypot(tracks["deta"], tracks["dphi"]), rtol=1e-6)


def test_deta_dphi_relative_to_own_jet(read: dict[str, Any]) -> None:
    out = read["small"]
    jet_of_track = np.repeat(np.arange(len(out["counts"])), out["counts"])
    deta = out["tracks"]["eta"] - out["jets"]["eta"][jet_of_track]
    np.testing.assert_allclose(out["tracks"]["deta"], deta, atol=1e-5)
    dphi = np.angle(np.exp(1j * (out["tracks"]["phi"] - out["jets"]["phi"][jet_of_track])))
    np.testing.assert_allclose(out["tracks"]["dphi"], dphi, atol=1e-5)


def test_chunking_does_not_change_output(read: dict[str, Any]) -> None:
    small, big = read["small"], read["big"]
    assert small["events"] == big["events"]
    np.testing.assert_array_equal(small["counts"], big["counts"])
    for part in ("jets", "tracks"):
        assert small[part].keys() == big[part].keys()
        for key in small[part]:
            np.testing.assert_array_equal(small[part][key], big[part][key], err_msg=key)


def test_dr_association() -> None:
    out = collect(lite(data(TTREE), {"association": "dr"}), 7)
    tracks, counts = out["tracks"], out["counts"]
    assert len(counts) == FILES[TTREE][3]
    assert (tracks["dr"] < 0.4).all()
    # the same count by brute force, one event at a time
    tree = uproot.open(data(TTREE))["CollectionTree"]
    ref = tree.arrays(
        ["AnalysisJetsAuxDyn.eta", "AnalysisJetsAuxDyn.phi"]
        + [f"InDetTrackParticlesAuxDyn.{v}" for v in ("theta", "phi")]
    )
    expected = []
    for event in ref.to_list():
        jet_eta = np.array(event["AnalysisJetsAuxDyn.eta"])[:, None]
        jet_phi = np.array(event["AnalysisJetsAuxDyn.phi"])[:, None]
        eta = -np.log(np.tan(np.array(event["InDetTrackParticlesAuxDyn.theta"]) / 2))
        dphi = np.angle(np.exp(1j * (np.array(event["InDetTrackParticlesAuxDyn.phi"]) - jet_phi)))
        expected.extend((np.hypot(eta - jet_eta, dphi) < 0.4).sum(axis=1).tolist())
    np.testing.assert_array_equal(counts, expected)


def hide_ghost_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every tree look as if it had no GhostTrack branch."""
    real = root.tree_keys

    def keys(tree: Any) -> set[str]:
        return {k for k in real(tree) if "GhostTrack" not in k}

    monkeypatch.setattr(root, "tree_keys", keys)
    monkeypatch.setattr(physlite, "tree_keys", keys)


def test_dr_fallback_without_ghost_links(monkeypatch: pytest.MonkeyPatch) -> None:
    path = data(TTREE)
    hide_ghost_links(monkeypatch)
    source = lite(path, {"dr_fallback": 0.3})
    assert source.links is None
    tracks = collect(source, 7)["tracks"]
    assert (tracks["dr"] < 0.3).all()
    explicit = collect(lite(path, {"association": "dr", "dr_cone": 0.3}), 1000)
    np.testing.assert_array_equal(tracks["dr"], explicit["tracks"]["dr"])
    with pytest.raises(HepsnakeError, match=r"AnalysisJetsAuxDyn\.GhostTrack"):
        lite(path, {"dr_fallback": None})


def test_missing_track_variable_names_file_and_branch() -> None:
    path = data(OLD_TTREE)  # the older file has no numberOfTRTHits
    with pytest.raises(HepsnakeError) as info:
        lite(path, {"tracks": ["pt", "numberOfTRTHits"]})
    assert path in str(info.value)
    assert "InDetTrackParticlesAuxDyn.numberOfTRTHits" in str(info.value)


def test_non_physlite_file_and_bad_spec() -> None:
    flat = data("uproot-HZZ.root")
    with pytest.raises(HepsnakeError, match="no PHYSLITE tree"):
        lite(flat, {})
    with pytest.raises(HepsnakeError, match="association"):
        lite(data(TTREE), {"association": "cone"})
    with pytest.raises(HepsnakeError, match="'jet' was unexpected"):
        lite(data(TTREE), {"jet": ["pt"]})


def test_link_out_of_range_names_file() -> None:
    path = data(TTREE)
    source = lite(path, {})
    links = ak.Array(
        [[[{"m_persKey": 0, "m_persIndex": 9}, {"m_persKey": KEY, "m_persIndex": 3}]]],
    )
    one = np.array([1])
    with pytest.raises(HepsnakeError, match=r"index 3 is out of range .* entry 7") as info:
        source._ghost(links, 7, one, np.array([0]), np.array([3]))
    assert path in str(info.value)
    jets, index = source._ghost(links, 7, one, np.array([0]), np.array([4]))
    assert jets.tolist() == [0] and index.tolist() == [3]
