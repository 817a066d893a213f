"""ROOT → FTAG HDF5 conversion: toy and real PHYSLITE files, layout, and bad input."""

import json
import shutil
import subprocess

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot
from conftest import PHYSLITE_FILES, stage

from hepsnake import __version__
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.io.h5 import TableWriter, read_json_attr
from hepsnake.simulate.densities import ORIGINS, origin_field, origin_posterior
from hepsnake.simulate.prepared import MASS_GRID
from hepsnake.simulate.toy import simulate, write_root


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    paths = {}
    for name, process, mass in (("qcd", "qcd", None), ("sig", "sig", 16.0)):
        paths[name] = root / f"{name}.root"
        write_root(simulate(name, process, 2000, 5, mass=mass, **MASS_GRID), paths[name])
    return paths


def run(config, sample, tmp_path):
    out, summary = tmp_path / f"{sample}.h5", tmp_path / f"{sample}.json"
    report = convert(stage(config, "convert", sample=sample), out, summary, show_progress=False)
    return out, report


def no_leftovers(directory):
    return not [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_toy_layout(toy_files, tmp_path, config_factory):
    config = config_factory(
        [
            {
                "name": "sig",
                "files": [str(toy_files["sig"])],
                "reader": "toy",
                "label": "sig",
                "params": "mS=16",
                "xsec": 2.0,
            }
        ],
        convert={"chunk_size": 700, "max_constituents": {"tracks": 6, "clusters": 30}},
    )
    out, report = run(config, "sig", tmp_path)
    tree = uproot.open(toy_files["sig"])["jets"]
    pt, eta = tree["jet_pt"].array(library="np"), tree["jet_eta"].array(library="np")
    passing = (pt > 20) & (np.abs(eta) < 2.5)
    with h5py.File(out) as h5:
        jets, tracks, clusters = h5["jets"][:], h5["tracks"][:], h5["clusters"][:]
        assert list(h5["jets"].attrs["class_names"]) == ["qcd", "sig", "bib"]
        assert list(h5["jets"].attrs["flavour_label"]) == list(h5["jets"].attrs["class_names"])
        assert h5.attrs["hepsnake_version"] == __version__
        assert (h5.attrs["sample"], h5.attrs["role"]) == ("sig", "train")
        assert h5["tracks"].chunks[1:] == (6,) and h5["tracks"].compression == "lzf"
        inputs = read_json_attr(h5, "inputs", "converted file")
        assert inputs[0]["size"] == toy_files["sig"].stat().st_size and inputs[0]["xxh3_64"]
        config = read_json_attr(h5, "config", "converted file")
        assert config["convert"]["max_constituents"]["tracks"] == 6
    assert len(jets) == passing.sum() == report["jets"]
    np.testing.assert_array_equal(jets["pt"], pt[passing])
    assert np.all(jets["flavour_label"] == 1) and np.all(jets["mS"] == 16)
    weights = tree["mcEventWeight"].array(library="np")[passing]
    np.testing.assert_allclose(jets["weight"], 2.0 * weights, rtol=1e-6)
    assert tracks.shape == (len(jets), 6) and tracks.dtype.names[0] == "valid"
    # valid constituents packed first, ordered by descending pt, truncated at 6
    n_true = ak.num(tree["track_pt"].array())[passing].to_numpy()
    np.testing.assert_array_equal(tracks["valid"].sum(1), np.minimum(n_true, 6))
    valid = tracks["valid"]
    assert not np.any(~valid[:, :-1] & valid[:, 1:])
    assert np.all(np.diff(np.where(valid, tracks["pt"], 0.0), axis=1) <= 0)
    assert np.all(tracks["pt"][~valid] == 0)
    top = ak.sort(tree["track_pt"].array()[passing], axis=1, ascending=False)[:, :6]
    np.testing.assert_allclose(tracks["pt"][valid], ak.flatten(top).to_numpy())
    assert report["truncated_constituents"] == int(np.clip(n_true - 6, 0, None).sum())
    assert clusters.shape[1] == 30 and clusters["valid"].sum() > 0
    # the constituent truth is written and travels with its constituent through the sort
    for coll, table in (("tracks", tracks), ("clusters", clusters)):
        assert table["truth_origin"].dtype == table["truth_vertex"].dtype == np.int8
        ok = table[table["valid"]]
        fields = {
            k: ok[k].astype(np.float64)
            for k in ("pt", "d0", "z0", "e", "f_em", "time")
            if k in ok.dtype.names
        }
        llp = ORIGINS.index("llp")
        p_llp = origin_posterior(coll, fields, "sig")[:, llp]
        np.testing.assert_allclose(ok[origin_field("llp", "sig")], p_llp, rtol=1e-4, atol=1e-6)
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize("name", sorted(PHYSLITE_FILES))
def test_physlite_files(name, data_dir, tmp_path, config_factory):
    config = config_factory(
        [{"name": "p", "files": [str(data_dir / name)], "reader": "physlite"}],
        convert={"cuts": [], "max_constituents": {"tracks": 40}},
    )
    out, report = run(config, "p", tmp_path)
    expected_tracks = {
        "uproot-physlite-rntuple_v1-0-0-0.root": 2154,
        "uproot-issue-951.root": 1130,
        "uproot-issue-798.root": 169,
    }
    with h5py.File(out) as h5:
        jets, tracks = h5["jets"][:], h5["tracks"][:]
    assert len(jets) == PHYSLITE_FILES[name] == report["files"][0]["jets_written"]
    assert tracks["valid"].sum() == expected_tracks[name]
    assert np.all(jets["flavour_label"] == -1)
    if name.startswith("uproot-physlite"):
        labels, counts = np.unique(jets["HadronConeExclTruthLabelID"], return_counts=True)
        assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == {
            0: 613,
            4: 58,
            5: 194,
            15: 16,
        }
    # constituent pt is ordered, derived from qOverP/theta, in MeV like the jets
    valid = tracks["valid"]
    real = tracks[valid]
    np.testing.assert_allclose(
        real["pt"], np.abs(np.sin(real["theta"]) / real["qOverP"]), rtol=1e-5
    )


def test_physlite_glob_and_cuts(data_dir, tmp_path, config_factory):
    config = config_factory(
        [{"name": "p", "files": [str(data_dir / "uproot-issue-*.root")], "reader": "physlite"}],
        convert={"cuts": ["pt > 30000", "abs(eta) < 2.0"]},
    )
    out, report = run(config, "p", tmp_path)
    with h5py.File(out) as h5:
        jets = h5["jets"][:]
    assert [f["entries"] for f in report["files"]] == [40, 50]
    assert 0 < len(jets) < 372 + 455
    assert jets["pt"].min() > 30000 and np.abs(jets["eta"]).max() < 2.0


def test_flat_reader_per_event_entries(data_dir, tmp_path, config_factory):
    config = config_factory(
        [
            {
                "name": "hzz",
                "files": [str(data_dir / "uproot-HZZ.root")],
                "reader": "hzz",
                "label": "qcd",
            }
        ],
        readers={
            "hzz": {
                "type": "flat",
                "tree": "events",
                "entry": "event",
                "jets": {
                    "px": "Jet_Px",
                    "py": "Jet_Py",
                    "btag": "Jet_btag",
                    "mcEventWeight": "EventWeight",
                },
            }
        },
        convert={"cuts": []},
    )
    out, _ = run(config, "hzz", tmp_path)
    tree = uproot.open(data_dir / "uproot-HZZ.root")["events"]
    with h5py.File(out) as h5:
        jets = h5["jets"][:]
    assert len(jets) == 2773
    n_jets = ak.num(tree["Jet_Px"].array()).to_numpy()
    np.testing.assert_array_equal(jets["eventNumber"], np.repeat(np.arange(len(n_jets)), n_jets))
    np.testing.assert_allclose(
        jets["mcEventWeight"], np.repeat(tree["EventWeight"].array(library="np"), n_jets)
    )


def bad_inputs(tmp_path, toy_files, data_dir):
    text = tmp_path / "notroot.root"
    text.write_text("hello, I am not a ROOT file\n" * 100)
    truncated = tmp_path / "truncated.root"
    blob = toy_files["sig"].read_bytes()
    truncated.write_bytes(blob[: len(blob) // 2])
    empty = tmp_path / "empty.root"
    with uproot.recreate(empty) as f:
        f.mktree("jets", {"jet_pt": np.float32})
    nan = tmp_path / "nan.root"
    branches = simulate("n", "qcd", 50, 1, **MASS_GRID)
    branches["jet_eta"][7] = np.nan
    write_root(branches, nan)
    hzz = str(data_dir / "uproot-HZZ.root")
    return [
        (text, "toy", [], "not a readable ROOT file"),
        (truncated, "toy", [], "truncated.root: "),
        (tmp_path / "missing.root", "toy", [], "file not found"),
        (hzz, "toy", [], "no tree 'jets' (has: events)"),
        (toy_files["qcd"], "toy_extra", [], "missing branch 'jet_charge'"),
        (empty, "toy", [], "tree 'jets' is empty"),
        (toy_files["qcd"], "toy", ["pt > 1e9"], "zero jets after cuts"),
        (toy_files["qcd"], "toy", ["charge > 1"], "unknown jet variable 'charge'"),
        (nan, "toy", [], "1 non-finite (NaN/inf) values in 'jets.eta'"),
    ]


def test_bad_input_one_clear_error_no_output(toy_files, tmp_path, data_dir, config_factory):
    inputs = tmp_path / "in"
    inputs.mkdir()
    base = config_factory([{"name": "x", "files": ["x"], "reader": "toy"}])
    extra = json.loads(json.dumps(base["readers"]["toy"]))
    extra["jets"]["charge"] = "jet_charge"
    for path, reader, cuts, needle in bad_inputs(inputs, toy_files, data_dir):
        config = config_factory(
            [{"name": "bad", "files": [str(path)], "reader": "toy" if reader == "toy" else "x"}],
            readers={"x": extra},
            convert={"cuts": cuts},
        )
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        with pytest.raises(HepsnakeError) as err:
            run(config, "bad", out)
        message = str(err.value)
        assert needle in message, message
        assert "\n" not in message
        if "zero jets" not in needle:
            assert str(path).split("/")[-1] in message
        assert list(out.iterdir()) == [], needle


def test_skip_bad_files(toy_files, tmp_path, config_factory):
    bad = tmp_path / "bad.root"
    bad.write_bytes(toy_files["sig"].read_bytes()[:5000])
    files = [str(toy_files["qcd"]), str(bad)]
    config = config_factory(
        [{"name": "q", "files": files, "reader": "toy", "label": "qcd"}],
        convert={"skip_bad_files": True, "chunk_size": 500},
    )
    out, report = run(config, "q", tmp_path)
    assert [s["path"] for s in report["skipped"]] == [str(bad)]
    assert str(bad) in report["skipped"][0]["reason"]
    summary = json.loads((tmp_path / "q.json").read_text())
    assert summary["skipped"] == report["skipped"] and summary["jets"] == report["jets"]
    with h5py.File(out) as h5:
        assert h5["jets"].shape[0] == report["files"][0]["jets_written"] == report["jets"]
        assert h5["tracks"].shape[0] == report["jets"]


def test_cli_error_line_and_exit_code(tmp_path):
    bad = tmp_path / "bad.root"
    bad.write_text("nope")
    config = {
        "class_names": ["bkg", "sig"],
        "samples": [{"name": "s", "files": [str(bad)], "reader": "r"}],
        "readers": {"r": {"type": "flat", "tree": "t", "jets": {"pt": "pt"}}},
        "inputs": {"variables": {"jets": ["pt"]}},
        "convert": {},
    }
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(config))
    out = tmp_path / "o.h5"
    hepsnake = shutil.which("hepsnake")
    assert hepsnake, "the hepsnake console script is installed"
    proc = subprocess.run(
        [
            hepsnake,
            "convert",
            "--config",
            str(cfg),
            "--sample",
            "s",
            "--output",
            str(out),
            "--summary",
            str(tmp_path / "s.json"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hepsnake convert: error: ")
    assert "bad.root: not a readable ROOT file" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(("branch", "variable"), [("jet_pt", "pt"), ("jet_eta", "eta")])
def test_non_finite_cut_variable_is_an_error_with_default_cuts(
    branch, variable, tmp_path, config_factory
):
    branches = simulate("n", "qcd", 200, 1, **MASS_GRID)
    branches[branch][[3, 150]] = [np.nan, np.inf]
    path = tmp_path / "in" / "nan.root"
    path.parent.mkdir()
    write_root(branches, path)
    config = config_factory([{"name": "n", "files": [str(path)], "reader": "toy"}])
    assert config["convert"]["cuts"] == ["pt > 20", "abs(eta) < 2.5"]  # the shipped defaults
    with pytest.raises(HepsnakeError) as err:
        run(config, "n", tmp_path)
    assert str(err.value) == f"{path}: 2 non-finite (NaN/inf) values in 'jets.{variable}'"
    assert list(tmp_path.iterdir()) == [path.parent]


def test_summary_failure_leaves_no_output(toy_files, tmp_path, config_factory, monkeypatch):
    config = config_factory(
        [{"name": "q", "files": [str(toy_files["qcd"])], "reader": "toy", "label": "qcd"}]
    )

    def fail(data):
        raise OSError("disk full")

    monkeypatch.setattr("hepsnake.convert.convert.json_text", fail)
    with pytest.raises(OSError, match="disk full"):
        run(config, "q", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_entry_numbers_are_distinct_across_files(toy_files, tmp_path, config_factory):
    """Without an eventNumber branch, file k's events are numbered from k * 2**32: events of
    different files get different numbers, whichever files one job converts."""
    files = [toy_files["qcd"], toy_files["sig"]]
    config = config_factory(
        [{"name": "two", "files": [str(f) for f in files], "reader": "plain", "label": "qcd"}],
        readers={
            "plain": {"type": "flat", "tree": "jets", "jets": {"pt": "jet_pt", "eta": "jet_eta"}}
        },
        convert={"chunk_size": 700},
    )
    out, report = run(config, "two", tmp_path)
    expected = []
    for k, path in enumerate(files):
        tree = uproot.open(path)["jets"]
        pt, eta = tree["jet_pt"].array(library="np"), tree["jet_eta"].array(library="np")
        expected.append(k * 2**32 + np.flatnonzero((pt > 20) & (np.abs(eta) < 2.5)))
    with h5py.File(out) as h5:
        numbers = h5["jets"]["eventNumber"]
    np.testing.assert_array_equal(numbers, np.concatenate(expected))
    assert [f["entries"] for f in report["files"]] == [2000, 2000]


def test_flat_reader_on_rntuple(tmp_path, config_factory):
    rng = np.random.default_rng(2)
    counts = rng.poisson(4, 300)
    counts[:5] = [0, 9, 1, 7, 0]
    total = int(counts.sum())
    path = tmp_path / "rntuple.root"
    with uproot.recreate(path) as f:
        f["events"] = {
            "jet_pt": rng.uniform(10, 100, 300).astype(np.float32),
            "jet_eta": rng.uniform(-3, 3, 300).astype(np.float32),
            "evt": np.arange(300, dtype=np.int64) // 2,
            "trk_pt": ak.unflatten(rng.exponential(5, total).astype(np.float32), counts),
            "trk_d0": ak.unflatten(rng.normal(0, 1, total).astype(np.float32), counts),
        }
    assert type(uproot.open(path)["events"]).__name__.endswith("RNTuple")
    config = config_factory(
        [{"name": "rn", "files": [str(path)], "reader": "rn", "label": "sig"}],
        readers={
            "rn": {
                "type": "flat",
                "tree": "events",
                "jets": {"pt": "jet_pt", "eta": "jet_eta", "eventNumber": "evt"},
                "collections": {"tracks": {"pt": "trk_pt", "d0": "trk_d0"}},
            }
        },
        convert={"max_constituents": {"tracks": 6}, "sort_by": {"tracks": "pt"}, "chunk_size": 64},
    )
    out, report = run(config, "rn", tmp_path)
    source = uproot.open(path)["events"].arrays(library="ak")
    passing = ((source["jet_pt"] > 20) & (abs(source["jet_eta"]) < 2.5)).to_numpy()
    with h5py.File(out) as h5:
        jets, tracks = h5["jets"][:], h5["tracks"][:]
    assert len(jets) == passing.sum() == report["jets"] and 0 < len(jets) < 300
    np.testing.assert_array_equal(jets["eventNumber"], np.flatnonzero(passing) // 2)
    np.testing.assert_array_equal(tracks["valid"].sum(1), np.minimum(counts[passing], 6))
    top = ak.sort(source["trk_pt"][passing], axis=1, ascending=False)[:, :6]
    np.testing.assert_array_equal(tracks["pt"][tracks["valid"]], ak.flatten(top).to_numpy())
    assert report["truncated_constituents"] == int(np.clip(counts[passing] - 6, 0, None).sum())


def test_each_output_dataset_caches_several_chunks(tmp_path):
    """The writer's datasets keep a chunk cache of several chunks (HDF5 1.x's 1 MiB default
    holds none of a 40-slot constituent chunk: a partly filled chunk would be recompressed at
    every append), and appends land in order."""
    record = np.dtype([("valid", bool), *[(f"x{i}", np.float32) for i in range(24)]])
    table = np.zeros((1500, 40), dtype=record)
    table["x0"] = np.arange(1500)[:, None]
    with h5py.File(tmp_path / "out.h5", "w") as h5:
        writer = TableWriter(h5, "lzf")
        writer.append("tracks", table[:700])
        writer.append("tracks", table[700:])
        chunk_bytes = 1000 * 40 * record.itemsize  # 3.9 MB
        assert h5["tracks"].chunks == (1000, 40)
        cached = writer.datasets["tracks"][0].id.get_access_plist().get_chunk_cache()[1]
        assert cached >= 4 * chunk_bytes
    with h5py.File(tmp_path / "out.h5") as h5:
        assert h5["tracks"][:].tobytes() == table.tobytes()
