"""Splits, weights, normalisation and the truth-leak guard."""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import GRID, default_config
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hepsnake.config import validate
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.prepare.guard import check_inputs
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.toy import simulate, write_root

TOY = [
    ("qcd", "qcd", None, 6000, "train", "qcd"),
    ("bib", "bib", None, 3000, "train", "bib"),
    ("sig", "sig", 16.0, 3000, "train", "sig"),
    ("sig40", "sig", 40.0, 500, "test", "sig"),
    ("data", "qcd", None, 2000, "control", "data"),
    ("mc", "qcd", None, 2000, "control", "mc"),
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Small converted toy samples and the config that describes them."""
    root = tmp_path_factory.mktemp("prep")
    config = default_config()
    config["samples"] = []
    for name, process, mass, n, role, label in TOY:
        branches = simulate(name, process, n, 3, mass=mass, mismodel=name == "data", **GRID)
        write_root(branches, root / f"{name}.root")
        sample = {
            "name": name,
            "files": [str(root / f"{name}.root")],
            "reader": "toy",
            "role": role,
            "label": label,
        }
        if mass:
            sample["params"] = {"mS": mass}
        config["samples"].append(sample)
    config = validate(config)
    paths = {}
    for name, *_ in TOY:
        paths[name] = str(root / f"{name}.h5")
        convert(config, name, paths[name], root / f"{name}.json", show_progress=False)
    return config, paths


def run_split(config, paths, names, out, control=False, debug=True):
    outputs = {s: str(out / f"{s}.h5") for s in SPLITS}
    dbg = {s: str(out / f"debug_{s}.h5") for s in SPLITS} if debug else None
    report = split(
        config,
        [paths[n] for n in names],
        outputs,
        str(out / "summary.json"),
        dbg,
        control,
        str(out / "rw.png") if not control else None,
    )
    return outputs, report


def read(path, name="jets"):
    with h5py.File(path) as h5:
        return h5[name][:]


def jet_ids(table, names):
    return {
        (names[s], int(e), float(p))
        for s, e, p in zip(table["sample"], table["eventNumber"], table["pt"], strict=True)
    }


def test_split_integrity(converted, tmp_path):
    config, paths = converted
    main = ["qcd", "bib", "sig", "sig40"]
    outputs, report = run_split(config, paths, main, tmp_path)
    tables = {s: read(outputs[s]) for s in SPLITS}
    ids = {s: jet_ids(tables[s], sorted(main)) for s in SPLITS}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"])
    assert not (ids["val"] & ids["test"])
    everything = set()
    for name in main:
        jets = read(paths[name])
        everything |= {
            (name, int(e), float(p)) for e, p in zip(jets["eventNumber"], jets["pt"], strict=True)
        }
    assert ids["train"] | ids["val"] | ids["test"] == everything
    assert sum(len(t) for t in tables.values()) == len(everything)
    # event-consistent: an event's jets all land in one split
    events = {}
    for s, table in tables.items():
        for key in zip(table["sample"], table["eventNumber"], strict=True):
            assert events.setdefault(key, s) == s
    # the test-role sample goes to test only; fractions are respected for the others
    sig40 = sorted(main).index("sig40")
    assert all(not np.any(tables[s]["sample"] == sig40) for s in ("train", "val"))
    n_train = sum(len(tables[s][tables[s]["sample"] != sig40]) for s in SPLITS)
    assert abs((tables["train"]["sample"] != sig40).sum() / n_train - 0.8) < 0.02
    # shuffled: samples are mixed along the file
    assert len(np.unique(tables["train"]["sample"][:100])) == 3
    # collections follow their jets
    tracks = read(outputs["train"], "tracks")
    assert tracks.shape == (len(tables["train"]), 40)
    source = read(paths["sig"]), read(paths["sig"], "tracks")
    row = int(np.flatnonzero(tables["train"]["sample"] == sorted(main).index("sig"))[0])
    match = np.flatnonzero(source[0]["pt"] == tables["train"]["pt"][row])
    assert np.array_equal(source[1][match[0]], tracks[row])
    assert len(read(str(tmp_path / "debug_train.h5"))) == min(5000, len(tables["train"]))
    assert {r["split"] for r in report["rows"]} == set(SPLITS)


def test_adding_a_sample_moves_no_other_jet(converted, tmp_path):
    config, paths = converted
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small, _ = run_split(config, paths, ["qcd", "sig"], tmp_path / "a", debug=False)
    large, _ = run_split(config, paths, ["qcd", "sig", "bib"], tmp_path / "b", debug=False)
    for s in SPLITS:
        a = {k for k in jet_ids(read(small[s]), ["qcd", "sig"]) if k[0] == "qcd"}
        b = {k for k in jet_ids(read(large[s]), ["bib", "qcd", "sig"]) if k[0] == "qcd"}
        assert a == b


def test_byte_identical_reruns(converted, tmp_path):
    config, paths = converted
    digests = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path / run)
        digests.append([hashlib.sha256(Path(outputs[s]).read_bytes()).hexdigest() for s in SPLITS])
    assert digests[0] == digests[1]


@settings(max_examples=50, deadline=None)
@given(
    events=st.lists(st.integers(0, 2**62), min_size=1, max_size=200),
    train=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_hash_assignment_is_a_function_of_the_event(events, train, seed):
    fractions = [train, (1 - train) / 2, (1 - train) / 2]
    numbers = np.array(events, dtype=np.int64)
    which = assign_splits(event_uniform("s", numbers, seed), fractions)
    assert set(which.tolist()) <= {0, 1, 2}
    again = assign_splits(event_uniform("s", numbers[::-1], seed), fractions)[::-1]
    np.testing.assert_array_equal(which, again)
    if train == 1.0:
        assert np.all(which == 0)


def test_hash_fractions_are_uniform():
    u = event_uniform("qcd", np.arange(200_000), 1)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert not np.allclose(u, event_uniform("bib", np.arange(200_000), 1))


def test_reweighting_matches_signal_pt(converted, tmp_path):
    config, paths = converted
    weights = {**config["prepare"]["weights"], "mode": "pt_to_signal"}
    config = {**config, "prepare": {**config["prepare"], "weights": weights}}
    outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    jets = read(outputs["train"])
    edges = np.quantile(jets["pt"][jets["label"] == 1], np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf

    def hist(cls):
        sel = jets["label"] == cls
        w = jets["train_weight"][sel].astype(np.float64)
        h, _ = np.histogram(jets["pt"][sel], bins=edges, weights=w)
        h2, _ = np.histogram(jets["pt"][sel], bins=edges, weights=w**2)
        return h / w.sum(), h2 / w.sum() ** 2

    sig, sig_var = hist(1)
    for cls in (0, 2):
        bkg, bkg_var = hist(cls)
        chi2 = np.sum((bkg - sig) ** 2 / (bkg_var + sig_var))
        assert stats.chi2.sf(chi2, len(sig) - 1) > 1e-3, (cls, chi2)
        raw, _ = np.histogram(jets["pt"][jets["label"] == cls], bins=edges)
        raw_chi2 = np.sum((raw / raw.sum() - sig) ** 2 / (raw / raw.sum() ** 2 + sig_var))
        assert raw_chi2 > chi2
    totals = [jets["train_weight"][jets["label"] == c].astype(np.float64).sum() for c in range(3)]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)


def test_control_mc_normalised_to_data(converted, tmp_path):
    config, paths = converted
    outputs, report = run_split(config, paths, ["data", "mc"], tmp_path, control=True)
    for s in SPLITS:
        jets = read(outputs[s])
        data_sum = jets["train_weight"][jets["is_data"]].sum()
        mc_sum = jets["train_weight"][~jets["is_data"]].astype(np.float64).sum()
        assert data_sum == jets["is_data"].sum()
        np.testing.assert_allclose(mc_sum, data_sum, rtol=1e-5)
    assert {r["class"] for r in report["rows"]} == {"data", "mc"}


def test_resampling_down(converted, tmp_path):
    config, paths = converted
    config = {**config, "prepare": {**config["prepare"], "resample": "down"}}
    outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    counts = np.bincount(read(outputs["train"])["label"])
    assert len(set(counts.tolist())) == 1


def test_norm_matches_numpy(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    norm_path, class_path = tmp_path / "norm.yaml", tmp_path / "class.yaml"
    norm_stats(config, outputs["train"], str(norm_path), str(class_path), chunk=777)
    norm = yaml.safe_load(norm_path.read_text())
    jets, tracks = read(outputs["train"]), read(outputs["train"], "tracks")
    real = tracks[tracks["valid"]]
    checks = [
        (norm["jets"]["eta"], jets["eta"]),
        (norm["jets"]["pt"], np.log1p(jets["pt"].astype(np.float64))),
        (norm["tracks"]["d0"], real["d0"]),
        (norm["tracks"]["pt"], np.log1p(real["pt"].astype(np.float64))),
    ]
    for got, values in checks:
        values = values.astype(np.float64)
        np.testing.assert_allclose(got["mean"], values.mean(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got["std"], values.std(), rtol=1e-6)
    assert norm["tracks"]["pt"]["transform"] == "log1p"
    assert set(norm) == {"jets", "tracks", "clusters"}
    classes = yaml.safe_load(class_path.read_text())
    np.testing.assert_allclose(classes["jets"]["label"], [1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ("label", "is a label or weight"),
        ("truth_logp_sig", "truth field"),
        ("HadronConeExclTruthLabelID", "inputs.truth"),
        ("eventNumber", "event identifier"),
    ],
)
def test_truth_leak_guard(variable, reason):
    inputs = {"variables": {"jets": ["pt", variable]}, "truth": ["HadronConeExclTruthLabelID"]}
    with pytest.raises(HepsnakeError, match=f"inputs/variables/jets/{variable}.*{reason}"):
        check_inputs(inputs)
    check_inputs({**inputs, "allow_truth_inputs": True})


def test_bad_inputs_leave_nothing(converted, tmp_path):
    config, paths = converted
    bad = {
        **config,
        "prepare": {**config["prepare"], "fractions": {"train": 0.8, "val": 0.1, "test": 0.2}},
    }
    with pytest.raises(HepsnakeError, match=r"prepare/fractions: sum to 1.1, not 1"):
        run_split(bad, paths, ["qcd"], tmp_path)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as h5:
        h5.create_dataset("jets", data=read(paths["qcd"])[:0])
        h5.attrs["sample"] = "qcd"
    with pytest.raises(HepsnakeError, match=r"empty.h5: empty sample: no jets"):
        run_split(config, {"qcd": str(empty)}, ["qcd"], tmp_path)
    out = tmp_path / "ok"
    out.mkdir()
    outputs, _ = run_split(config, paths, ["qcd", "sig"], out, debug=False)
    inputs = {**config["inputs"], "variables": {"tracks": ["pt", "charge"]}}
    with pytest.raises(HepsnakeError, match=r"train.h5: variable 'charge' not in 'tracks'"):
        norm_stats(
            {**config, "inputs": inputs},
            outputs["train"],
            str(tmp_path / "n.yaml"),
            str(tmp_path / "c.yaml"),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5", "ok"]
    json.loads((out / "summary.json").read_text())


def test_zero_std_needs_a_floor(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(config, paths, ["sig"], tmp_path, debug=False)
    inputs = {**config["inputs"], "variables": {"jets": ["mS"]}}
    args = (outputs["train"], str(tmp_path / "n.yaml"), str(tmp_path / "c.yaml"))
    with pytest.raises(HepsnakeError, match=r"'jets.mS': std is 0"):
        norm_stats({**config, "inputs": inputs}, *args)
    floored = {**config, "inputs": inputs, "prepare": {**config["prepare"], "std_floor": 0.5}}
    assert norm_stats(floored, *args)["jets"]["mS"] == {"mean": 16.0, "std": 0.5}


def test_label_map_on_physlite(data_dir, tmp_path, config_factory):
    config = config_factory(
        [{"name": "p", "files": [str(data_dir / "uproot-issue-951.root")], "reader": "physlite"}],
        convert={"cuts": []},
        prepare={
            "label_map": {
                "variable": "HadronConeExclTruthLabelID",
                "map": {"0": 0, "4": 1, "5": 2},
            },
            "weights": {"mode": "none", "balance_classes": False},
        },
    )
    config["class_names"] = ["light", "c", "b"]
    convert(config, "p", tmp_path / "p.h5", tmp_path / "p.json", show_progress=False)
    outputs, _ = run_split(config, {"p": str(tmp_path / "p.h5")}, ["p"], tmp_path, debug=False)
    jets = np.concatenate([read(outputs[s]) for s in SPLITS])
    assert len(jets) == 455 - 16  # the 16 tau jets are not in the map
    raw = {0: 0, 4: 1, 5: 2}
    assert all(
        raw[int(r)] == lab
        for r, lab in zip(jets["HadronConeExclTruthLabelID"], jets["label"], strict=True)
    )
    unmapped = {**config, "prepare": {**config["prepare"], "label_map": None}}
    with pytest.raises(HepsnakeError, match=r"no class label and prepare.label_map is unset"):
        run_split(unmapped, {"p": str(tmp_path / "p.h5")}, ["p"], tmp_path / "x", debug=False)
