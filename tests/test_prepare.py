"""Splits, weights, normalisation and the truth-leak guard."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import skhep_testdata
import yaml
from conftest import default_config, stage
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hepsnake.config import build, validate
from hepsnake.config.checks import check_inputs
from hepsnake.config.contracts import WeightsSpec
from hepsnake.convert.convert import convert
from hepsnake.data.loader import H5Batches, InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, bucket_rows, scratch_file, split
from hepsnake.prepare.weights import PairwiseSum, Reweighter, base_weights, fit_reweighter
from hepsnake.simulate.prepared import MASS_GRID
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
        branches = simulate(name, process, n, 3, mass=mass, mismodel=name == "data", **MASS_GRID)
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
        c = stage(config, "convert", sample=name)
        convert(c, paths[name], root / f"{name}.json", show_progress=False)
    return config, paths


def some_classes(config):
    """``config`` for splitting samples of only some of its classes: the others dropped."""
    return {**config, "prepare": {**config["prepare"], "empty_class": "drop"}}


def run_split(config, paths, names, out, control=False, debug=True):
    outputs = {s: str(out / f"{s}.h5") for s in SPLITS}
    dbg = {s: str(out / f"debug_{s}.h5") for s in SPLITS} if debug else None
    report = split(
        stage(config, "split"),
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
    raw = source[1].dtype.names
    assert np.array_equal(source[1][match[0]], tracks[list(raw)][row].astype(source[1].dtype))
    # then each transformed input (inputs.transforms: tracks pt log1p) as its own field
    assert tracks.dtype.names == (*raw, "log_pt")
    assert len(read(str(tmp_path / "debug_train.h5"))) == min(5000, len(tables["train"]))
    assert {r["split"] for r in report["rows"]} == set(SPLITS)
    assert (tmp_path / "rw.png").read_bytes().startswith(b"\x89PNG")


def test_adding_a_sample_moves_no_other_jet(converted, tmp_path):
    config, paths = converted
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small, _ = run_split(some_classes(config), paths, ["qcd", "sig"], tmp_path / "a", debug=False)
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
    edges = np.quantile(jets["pt"][jets["flavour_label"] == 1], np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf

    def hist(cls):
        sel = jets["flavour_label"] == cls
        w = jets["train_weight"][sel].astype(np.float64)
        h, _ = np.histogram(jets["pt"][sel], bins=edges, weights=w)
        h2, _ = np.histogram(jets["pt"][sel], bins=edges, weights=w**2)
        return h / w.sum(), h2 / w.sum() ** 2

    sig, sig_var = hist(1)
    for cls in (0, 2):
        bkg, bkg_var = hist(cls)
        chi2 = np.sum((bkg - sig) ** 2 / (bkg_var + sig_var))
        assert stats.chi2.sf(chi2, len(sig) - 1) > 1e-3, (cls, chi2)
        raw, _ = np.histogram(jets["pt"][jets["flavour_label"] == cls], bins=edges)
        raw_chi2 = np.sum((raw / raw.sum() - sig) ** 2 / (raw / raw.sum() ** 2 + sig_var))
        assert raw_chi2 > chi2
    totals = [
        jets["train_weight"][jets["flavour_label"] == c].astype(np.float64).sum() for c in range(3)
    ]
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


def test_norm_matches_numpy(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    norm_path, class_path = tmp_path / "norm.yaml", tmp_path / "class.yaml"
    norm_stats(stage(config, "norm"), outputs["train"], str(norm_path), str(class_path), chunk=777)
    norm = yaml.safe_load(norm_path.read_text())
    jets, tracks = read(outputs["train"]), read(outputs["train"], "tracks")
    real = tracks[tracks["valid"]]
    # log1p pt is its own prepared field, log_pt; the norm dict lists it, not pt
    np.testing.assert_allclose(jets["log_pt"], np.log1p(jets["pt"]), rtol=1e-6)
    np.testing.assert_allclose(real["log_pt"], np.log1p(real["pt"]), rtol=1e-6)
    checks = [
        (norm["jets"]["eta"], jets["eta"]),
        (norm["jets"]["log_pt"], jets["log_pt"]),
        (norm["tracks"]["d0"], real["d0"]),
        (norm["tracks"]["log_pt"], real["log_pt"]),
    ]
    for got, values in checks:
        values = values.astype(np.float64)
        np.testing.assert_allclose(got["mean"], values.mean(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got["std"], values.std(), rtol=1e-6)
    assert "pt" not in norm["jets"] and "pt" not in norm["tracks"]
    assert all(set(e) == {"mean", "std"} for per in norm.values() for e in per.values())
    assert set(norm) == {"jets", "tracks", "clusters"}
    classes = yaml.safe_load(class_path.read_text())
    np.testing.assert_allclose(classes["jets"]["flavour_label"], [1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ("label", "is a label or weight"),
        ("truth_logp_sig", "truth field"),
        ("HadronConeExclTruthLabelID", "inputs.truth"),
        ("PartonLabel_b", "inputs.truth"),  # a pattern in the list
        ("eventNumber", "event identifier"),
    ],
)
def test_truth_leak_guard(variable, reason):
    truth = ["HadronConeExclTruthLabelID", "PartonLabel_*"]
    inputs = {"variables": {"jets": ["pt", variable]}, "truth": truth, "allow_truth_inputs": False}
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
        validate(bad)  # when the config is read, before any job
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as h5:
        h5.create_dataset("jets", data=read(paths["qcd"])[:0])
        h5.attrs["sample"] = "qcd"
    with pytest.raises(HepsnakeError, match=r"empty.h5: empty sample: no jets"):
        run_split(config, {"qcd": str(empty)}, ["qcd"], tmp_path)
    out = tmp_path / "ok"
    out.mkdir()
    outputs, _ = run_split(some_classes(config), paths, ["qcd", "sig"], out, debug=False)
    inputs = {**config["inputs"], "variables": {"tracks": ["pt", "charge"]}}
    with pytest.raises(HepsnakeError, match=r"train.h5: variable 'charge' not in 'tracks'"):
        norm_stats(
            stage({**config, "inputs": inputs}, "norm"),
            outputs["train"],
            str(tmp_path / "n.yaml"),
            str(tmp_path / "c.yaml"),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5", "ok"]
    json.loads((out / "summary.json").read_text())


def test_zero_std_needs_a_floor(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(some_classes(config), paths, ["sig"], tmp_path, debug=False)
    inputs = {**config["inputs"], "variables": {"jets": ["mS"]}}
    args = (outputs["train"], str(tmp_path / "n.yaml"), str(tmp_path / "c.yaml"))
    with pytest.raises(HepsnakeError, match=r"'jets.mS': std is 0"):
        norm_stats(stage({**config, "inputs": inputs}, "norm"), *args)
    floored = {**config, "inputs": inputs, "prepare": {**config["prepare"], "std_floor": 0.5}}
    assert norm_stats(stage(floored, "norm"), *args)["jets"]["mS"] == {"mean": 16.0, "std": 0.5}


def physlite_flavours(tmp_path: Path, label_map: dict) -> dict:
    """A validated light/c/b config over one real PHYSLITE file, converted to ``p.h5``."""
    config = default_config() | {
        "class_names": ["light", "c", "b"],
        "samples": [
            {"name": "p", "files": [skhep_testdata.data_path(PHYSLITE)], "reader": "physlite"}
        ],
    }
    config["convert"]["cuts"] = []
    config["inputs"] = {"variables": {"jets": ["pt", "eta"]}}
    config["prepare"]["label_map"] = label_map
    config["prepare"]["weights"] = {"mode": "none", "balance_classes": False}
    config["evaluate"] = {"signal": "b"}
    config = validate(config)
    c = stage(config, "convert", sample="p")
    convert(c, tmp_path / "p.h5", tmp_path / "p.json", show_progress=False)
    return config


PHYSLITE = "uproot-issue-951.root"  # 455 jets: HadronConeExclTruthLabelID 0, 4, 5 and 16 taus
FLAVOUR = "HadronConeExclTruthLabelID"


def test_label_map_lists_and_drop_on_physlite(tmp_path):
    label_map = {"variable": FLAVOUR, "map": {"b": [5], "c": [4], "light": [0], "drop": [15]}}
    config = physlite_flavours(tmp_path, label_map)
    outputs, report = run_split(config, {"p": str(tmp_path / "p.h5")}, ["p"], tmp_path, debug=0)
    jets = np.concatenate([read(outputs[s]) for s in SPLITS])
    assert len(jets) == 455 - 16 and report["dropped"] == {"label_map": 16}
    assert json.loads((tmp_path / "summary.json").read_text())["dropped"] == {"label_map": 16}
    raw = {0: 0, 4: 1, 5: 2}
    assert [raw[int(r)] for r in jets[FLAVOUR]] == list(jets["flavour_label"])
    unmapped = {**config, "prepare": {**config["prepare"], "label_map": None}}
    with pytest.raises(HepsnakeError, match=r"no class label and prepare.label_map is unset"):
        run_split(unmapped, {"p": str(tmp_path / "p.h5")}, ["p"], tmp_path / "x", debug=False)


@pytest.mark.parametrize(
    ("mapping", "needle"),
    [
        # the taus are in no class: an error that counts them
        (
            {"b": [5], "c": [4], "light": [0]},
            r"prepare.label_map: \w+ values in no class: 15 \(16 jets\)",
        ),
        (
            {"light": [99], "drop": [0, 4, 5, 15]},
            r"prepare.label_map leaves no jets; \w+ values seen: 0 \(\d+ jets\), ",
        ),
    ],
)
def test_label_map_errors_name_the_values(mapping, needle, tmp_path):
    config = physlite_flavours(tmp_path, {"variable": FLAVOUR, "map": mapping})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(HepsnakeError, match=f"p.h5: {needle}"):
        run_split(config, {"p": str(tmp_path / "p.h5")}, ["p"], out, debug=False)
    assert list(out.iterdir()) == []


def test_label_map_ranges_and_unmapped_drop(converted, tmp_path):
    """Half-open ranges of a float field label an unlabelled sample; ``unmapped: drop``."""
    config, paths = converted
    config = {**config, "samples": [*config["samples"], {"name": "raw", "role": "train"}]}
    pt = read(paths["qcd"])["pt"]
    raw = tmp_path / "raw.h5"
    shutil.copy(paths["qcd"], raw)
    with h5py.File(raw, "r+") as h5:
        h5.attrs["sample"] = "raw"
        jets = h5["jets"][:]
        jets["flavour_label"] = -1
        h5["jets"][:] = jets
    label_map = {
        "variable": "pt",
        "map": {"qcd": {"range": [0, 40]}, "sig": [{"range": [40, 60]}, 1000.0]},
        "unmapped": "drop",
    }
    prepare = {**config["prepare"], "label_map": label_map, "empty_class": "drop"}
    outputs, report = run_split(
        {**config, "prepare": prepare}, {"raw": str(raw)}, ["raw"], tmp_path, debug=False
    )
    got = np.concatenate([read(outputs[s]) for s in SPLITS])
    want = np.where(got["pt"] < 40, 0, 1)
    assert len(got) == np.sum(pt < 60) and np.array_equal(got["flavour_label"], want)
    assert report["dropped"] == {"label_map": int(np.sum(pt >= 60))} and np.sum(pt >= 60) > 0


def with_prepare(config, **weights):
    """``config`` with ``prepare.weights`` keys replaced (and ``resample`` if given)."""
    resample = weights.pop("resample", "none")
    prepare = {**config["prepare"], "weights": {**config["prepare"]["weights"], **weights}}
    return {**config, "prepare": {**prepare, "resample": resample}}


UNWEIGHTED = {"mode": "none", "balance_classes": False, "use_physics_weights": False}


@pytest.mark.parametrize("mode", ["down", "up"])
def test_resampling_instead_of_weights(mode, converted, tmp_path):
    config, paths = converted
    plain = with_prepare(config, **UNWEIGHTED)
    (tmp_path / "plain").mkdir()
    before, _ = run_split(plain, paths, ["qcd", "bib", "sig"], tmp_path / "plain", debug=False)
    resampled = with_prepare(config, **UNWEIGHTED, resample=mode)
    after, _ = run_split(resampled, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    original, train = read(before["train"]), read(after["train"])
    counts = np.bincount(original["flavour_label"])
    assert np.all(
        np.bincount(train["flavour_label"]) == (counts.min() if mode == "down" else counts.max())
    )
    assert np.all(train["train_weight"] == 1)
    names = ["bib", "qcd", "sig"]
    ids = [
        (names[s], int(e), float(p))
        for s, e, p in zip(train["sample"], train["eventNumber"], train["pt"], strict=True)
    ]
    unique = set(ids)
    assert unique <= jet_ids(original, names)
    if mode == "down":
        assert len(unique) == len(ids)  # no jet twice
    else:
        assert len(unique) == len(original)  # every jet at least once
    for s in ("val", "test"):  # only the training split is resampled
        assert read(after[s]).tobytes() == read(before[s]).tobytes()
    with pytest.raises(HepsnakeError, match=r"config: prepare/resample: .* weights.mode: none"):
        validate(with_prepare(config, resample=mode))  # when the config is read


def test_weights_mode_none(converted, tmp_path):
    """Without reweighting, the training weights are the physics weights (or 1) times the
    one constant that makes their mean over the training split 1, in every split."""
    config, paths = converted
    for physics in (False, True):
        out = tmp_path / str(physics)
        out.mkdir()
        unweighted = with_prepare(config, **{**UNWEIGHTED, "use_physics_weights": physics})
        outputs, _ = run_split(unweighted, paths, ["qcd", "bib", "sig"], out, debug=False)
        train = read(outputs["train"])
        norm = len(train) / train["weight"].astype(np.float64).sum() if physics else 1.0
        assert np.abs(train["train_weight"].astype(np.float64)).mean() == pytest.approx(1, 1e-6)
        for s in SPLITS:
            jets = read(outputs[s])
            expected = jets["weight"] * norm if physics else np.ones(len(jets))
            np.testing.assert_allclose(jets["train_weight"], expected, rtol=1e-6)
            assert not np.all(jets["weight"] == 1)  # physics weights differ from 1


def test_class_dict_on_unbalanced_classes(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(
        with_prepare(config, **UNWEIGHTED), paths, ["qcd", "bib", "sig"], tmp_path, debug=False
    )
    norm_stats(
        stage(config, "norm"), outputs["train"], str(tmp_path / "n.yaml"), str(tmp_path / "c.yaml")
    )
    counts = np.bincount(read(outputs["train"])["flavour_label"], minlength=3).astype(float)
    assert counts[0] > 1.5 * counts[1]  # qcd has twice the jets of sig and bib
    got = yaml.safe_load((tmp_path / "c.yaml").read_text())["jets"]["flavour_label"]
    np.testing.assert_allclose(got, counts.sum() / (3 * counts), rtol=1e-6)


def test_reweighting_2d_matches_signal(converted, tmp_path):
    config, paths = converted
    weighted = with_prepare(config, mode="pt_to_signal", variables=["pt", "eta"], bins=8)
    outputs, _ = run_split(weighted, paths, ["qcd", "bib", "sig"], tmp_path, debug=False)
    jets = read(outputs["train"])
    sig = jets["flavour_label"] == 1
    pt_edges = np.quantile(jets["pt"][sig], np.linspace(0, 1, 5))
    eta_edges = np.quantile(jets["eta"][sig], np.linspace(0, 1, 4))
    for edges in (pt_edges, eta_edges):
        edges[0], edges[-1] = -np.inf, np.inf

    def hist(sel, w):
        h, *_ = np.histogram2d(jets["pt"][sel], jets["eta"][sel], (pt_edges, eta_edges), weights=w)
        h2, *_ = np.histogram2d(
            jets["pt"][sel], jets["eta"][sel], (pt_edges, eta_edges), weights=w**2
        )
        return h.ravel() / w.sum(), h2.ravel() / w.sum() ** 2

    def weights(cls):
        return jets["flavour_label"] == cls, jets["train_weight"][
            jets["flavour_label"] == cls
        ].astype(float)

    target, target_var = hist(*weights(1))
    for cls in (0, 2):
        sel, w = weights(cls)
        got, var = hist(sel, w)
        chi2 = np.sum((got - target) ** 2 / (var + target_var))
        assert stats.chi2.sf(chi2, len(got) - 1) > 1e-3, (cls, chi2)
        raw, raw_var = hist(sel, np.ones(sel.sum()))
        assert np.sum((raw - target) ** 2 / (raw_var + target_var)) > 3 * chi2


def test_input_map_and_num_inputs_in_norm_and_loader(converted, tmp_path):
    config, paths = converted
    outputs, _ = run_split(some_classes(config), paths, ["qcd", "sig"], tmp_path, debug=False)
    renamed = tmp_path / "renamed.h5"
    shutil.copy(outputs["train"], renamed)
    with h5py.File(renamed, "a") as h5:
        h5.move("tracks", "trk")
        del h5["clusters"]
    inputs = {
        **config["inputs"],
        "variables": {"jets": ["eta"], "tracks": ["pt", "d0"]},
        "input_map": {"tracks": "trk"},
        "num_inputs": {"tracks": 3},
        "transforms": {},
    }
    args = (str(renamed), str(tmp_path / "n.yaml"), str(tmp_path / "c.yaml"))
    norm = norm_stats(stage({**config, "inputs": inputs}, "norm"), *args, chunk=500)
    tracks = read(renamed, "trk")
    first = tracks[:, :3][tracks["valid"][:, :3]]
    assert len(first) < tracks["valid"].sum()  # the truncation drops constituents
    for var in ("pt", "d0"):
        values = first[var].astype(np.float64)
        np.testing.assert_allclose(norm["tracks"][var]["mean"], values.mean(), rtol=1e-6)
        np.testing.assert_allclose(norm["tracks"][var]["std"], values.std(), rtol=1e-6)
    assert set(norm) == {"jets", "tracks"}
    spec = InputSpec.from_config(stage({**config, "inputs": inputs}, "norm").inputs)
    batch = next(
        iter(
            H5Batches(
                str(renamed),
                spec,
                batch_size=64,
            )
        )
    )
    width = batch["tracks"].shape[1]
    assert width == 3 == batch["tracks_mask"].shape[1]
    np.testing.assert_array_equal(batch["tracks_mask"].numpy(), tracks["valid"][:64, :3])
    np.testing.assert_array_equal(batch["tracks"][..., 1].numpy(), tracks["d0"][:64, :3])
    with pytest.raises(HepsnakeError, match=r"renamed.h5: no dataset 'tracks' for inputs"):
        norm_stats(stage({**config, "inputs": {**inputs, "input_map": {}}}, "norm"), *args)


def test_missing_fields_are_filled_by_type(converted, tmp_path):
    config, paths = converted
    extended = tmp_path / "qcd.h5"
    shutil.copy(paths["qcd"], extended)
    with h5py.File(extended, "a") as h5:
        jets = h5["jets"][:]
        extra = np.dtype([*jets.dtype.descr, ("flag", bool), ("n", np.int32), ("x", np.float32)])
        table = np.zeros(len(jets), extra)
        for name in jets.dtype.names:
            table[name] = jets[name]
        table["flag"], table["n"], table["x"] = True, 7, 1.5
        attrs = dict(h5["jets"].attrs)
        del h5["jets"]
        h5.create_dataset("jets", data=table)
        h5["jets"].attrs.update(attrs)
    inputs = {"qcd": str(extended), "sig": paths["sig"]}
    (tmp_path / "out").mkdir()
    outputs, _ = run_split(
        some_classes(config), inputs, ["qcd", "sig"], tmp_path / "out", debug=False
    )
    merged = read(outputs["train"])
    qcd = merged["sample"] == 0
    assert qcd.any() and (~qcd).any()
    assert np.all(merged["flag"][qcd]) and not np.any(merged["flag"][~qcd])
    assert np.all(merged["n"][qcd] == 7) and np.all(merged["n"][~qcd] == -1)
    assert np.all(merged["x"][qcd] == 1.5) and np.all(np.isnan(merged["x"][~qcd]))


def open_files() -> int:
    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


def test_failing_input_closes_every_file(converted, tmp_path):
    config, paths = converted
    before = open_files()
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as h5:
        h5.create_dataset("jets", data=read(paths["qcd"])[:0])
        h5.attrs["sample"] = "bib"
    inputs = {**paths, "bib": str(empty)}
    with pytest.raises(HepsnakeError, match=r"empty sample") as err:
        run_split(config, inputs, ["qcd", "sig", "bib"], tmp_path, debug=False)
    assert open_files() == before, err  # while the traceback (and its frames) is alive
    with pytest.raises(HepsnakeError, match=r"not in the config") as err:
        run_split({**config, "samples": []}, paths, ["qcd"], tmp_path, debug=False)
    assert open_files() == before, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5"]


def run_cli(config: str, paths: dict, out: Path) -> subprocess.CompletedProcess:
    hepsnake = shutil.which("hepsnake")
    assert hepsnake, "the hepsnake console script is installed"
    cmd = [hepsnake, "split", "--config", config, "--inputs", paths["qcd"], paths["sig"]]
    cmd += ["--outputs", *(str(out / f"{s}.h5") for s in SPLITS)]
    cmd += ["--summary", str(out / "summary.json"), "--plot", str(out / "rw.png")]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_split_errors_through_the_cli(converted, tmp_path):
    config, paths = converted
    config = some_classes(config)  # the CLI splits qcd and sig
    bad_var = with_prepare(config, mode="pt_to_signal", variables=["pt", "ptx"])
    bad_target = with_prepare(config, mode="pt_to_signal", target="top")
    var_file, config_file = tmp_path / "var.yaml", tmp_path / "config.yaml"
    var_file.write_text(yaml.safe_dump(bad_var))
    config_file.write_text(yaml.safe_dump(bad_target))
    cases = [
        (str(var_file), f"{paths['qcd']}: prepare.weights.variables: 'ptx'"),
        (str(config_file), f"{config_file}: prepare/weights/target: 'top' is not one"),
    ]
    for i, (cfg, needle) in enumerate(cases):
        out = tmp_path / str(i)
        out.mkdir()
        proc = run_cli(cfg, paths, out)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hepsnake split: error: "), lines
        assert needle in lines[0]
        assert list(out.iterdir()) == []


@pytest.mark.parametrize("resample", ["none", "up"])
def test_small_shuffle_buckets_change_nothing(resample, converted, tmp_path, monkeypatch):
    """The external collection shuffle gives the same splits with many small buckets."""
    config, paths = converted
    config = with_prepare(config, **UNWEIGHTED, resample=resample)
    tables = []
    for name, size in (("default", None), ("small", 200_000)):
        if size:
            monkeypatch.setattr("hepsnake.prepare.split.SHUFFLE_BYTES", size)
        (tmp_path / name).mkdir()
        outputs, _ = run_split(config, paths, ["qcd", "bib", "sig"], tmp_path / name)
        files = [*outputs.values(), *(str(tmp_path / name / f"debug_{s}.h5") for s in SPLITS)]
        tables.append([read(f, c) for f in files for c in ("jets", "tracks", "clusters")])
    for default, small in zip(*tables, strict=True):
        assert default.tobytes() == small.tobytes()
    assert not [p for p in (tmp_path / "small").iterdir() if p.name.startswith(".")]  # scratch


def test_summary_is_renamed_after_every_split_file(converted, tmp_path, monkeypatch):
    """The summary appears last: once it exists, every split and debug file does."""
    config, paths = converted
    renamed = []
    real = os.replace

    def record(src, dst):
        renamed.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr("hepsnake.io.atomic.os.replace", record)
    run_split(some_classes(config), paths, ["qcd", "sig"], tmp_path)
    files = [n for n in renamed if n.endswith(".h5")]
    assert len(files) == 6 and renamed[-1] == "summary.json", renamed


@pytest.mark.parametrize("most", [10**5, 10**7, 10**8])
def test_shuffle_writes_do_not_shrink_with_the_dataset(most):
    """A block's rows reach each bucket in writes of >= 64 KiB on average (of 16 MiB
    buckets), however many jets: the buckets grow as the root of the dataset instead."""
    row_bytes = 40 * 35  # 40 track slots of 35 bytes
    rows = bucket_rows(row_bytes, most, 16 << 20)
    assert rows >= (16 << 20) // row_bytes
    assert rows * rows / most * row_bytes >= 64 << 10 or rows == most
    assert rows * row_bytes <= 128 << 20  # 86 MB at 10^8 jets


def test_shuffle_scratch_writes_only_what_it_writes(tmp_path):
    """Small writes to far apart places of the shuffle's scratch file cost their own bytes,
    not a 64 KiB read and write-back each (HDF5's data sieve)."""

    def written() -> int:
        return int(Path("/proc/self/io").read_text().split("wchar: ")[1].split()[0])

    with scratch_file(tmp_path / "b.h5") as h5:
        ds = h5.create_dataset("pos", (10**7,), "i8")
        ds[0] = 1  # the dataset's storage allocated
        before = written()
        for k in range(1, 1000):
            ds[k * 10_000 : k * 10_000 + 2] = [k, k]
        assert written() - before < 1000 * 1024
    with h5py.File(tmp_path / "b.h5") as h5:
        assert h5["pos"][990_000:990_002].tolist() == [99, 99]


SMALL = 256 << 10  # shuffle_bytes: buckets of ~200 jets' tracks


def datasets_and_attrs(path):
    """Every dataset's dtype, shape and bytes, and every attribute, of an HDF5 file."""
    out = {}
    with h5py.File(path) as h5:
        out["attrs"] = {k: str(v) for k, v in h5.attrs.items() if k != "inputs"}
        for name, ds in h5.items():
            table = ds[:]
            out[name] = (table.dtype, table.shape, table.tobytes())
            out[f"{name}.attrs"] = {k: str(v) for k, v in ds.attrs.items()}
    return out


@pytest.mark.parametrize(
    ("names", "control", "resample"),
    [
        (["qcd", "bib", "sig", "sig40"], False, "none"),
        (["qcd", "bib", "sig"], False, "up"),
        (["data", "mc"], True, "none"),
    ],
)
def test_split_in_small_blocks_equals_one_block(converted, tmp_path, names, control, resample):
    """The split streams jets and constituents through buckets of ``shuffle_bytes``: with
    buckets of a few dozen jets the files hold the same datasets, byte for byte, as with
    one bucket per split (everything in memory at once), and the same summary."""
    config, paths = converted
    config = with_prepare(config, **UNWEIGHTED, resample=resample) if resample != "none" else config
    inputs = [paths[n] for n in names]
    results = []
    for shuffle_bytes in (SMALL, 1 << 40):
        out = tmp_path / str(shuffle_bytes)
        out.mkdir()
        outputs = {s: str(out / f"{s}.h5") for s in SPLITS}
        debug = {s: str(out / f"debug_{s}.h5") for s in SPLITS}
        report = split(
            stage(config, "split"),
            inputs,
            outputs,
            str(out / "s.json"),
            debug,
            control,
            shuffle_bytes=shuffle_bytes,
        )
        files = {k: datasets_and_attrs(p) for k, p in {**outputs, **debug}.items()}
        results.append((report, files))
    assert results[0][0] == results[1][0]
    for key, small in results[0][1].items():
        assert small.keys() == results[1][1][key].keys()
        for name, value in small.items():
            assert value == results[1][1][key][name], (key, name)
    with h5py.File(tmp_path / str(SMALL) / "train.h5") as h5:  # > 10 buckets of tracks
        tracks = h5["tracks"]
        assert tracks.shape[0] > 10 * SMALL // (tracks.dtype.itemsize * tracks.shape[1])


def test_permutation_is_a_shuffled_int32_arange():
    """The split shuffles an int32 ``arange`` in place: the order ``rng.permutation`` (int64)
    gives, so the split files keep their jet order."""
    for n in (1, 2, 1000, 123_457):
        for seed in ([42, 0, 0], [7, 2, 1]):
            order = np.arange(n, dtype=np.int32)
            np.random.default_rng(seed).shuffle(order)
            assert (order == np.random.default_rng(seed).permutation(n)).all()


WIDE = np.random.default_rng(5).random(300_001) * 10.0 ** np.random.default_rng(6).integers(
    -8, 8, 300_001
)  # values whose sum depends on the order of the additions


@pytest.mark.parametrize("n", [0, 1, 100, 129, 65_537, 300_001])
@pytest.mark.parametrize("leaf", [128, 1 << 16])
def test_pairwise_sum_in_blocks_is_numpy_sum(n, leaf):
    """Summed a block at a time, the split's totals are ``np.sum`` of the whole array to the
    bit, where summing the blocks' sums is not."""
    values = WIDE[:n]
    for block in (1000, 77_777, n + 1):
        total = PairwiseSum(n, leaf)
        for start in range(0, n, block):
            total.add(values[start : start + block])
        assert total.total() == np.sum(values), (n, block)
    blocks = sum(np.sum(values[a : a + 1000]) for a in range(0, n, 1000))
    assert n < 65_537 or blocks != np.sum(values)


def whole_split_reweighter(jets, cfg, class_names, negative="abs"):
    """The reweighter fitted on the whole training split at once (``np.bincount``
    histograms, ``np.sum`` totals): what the split computed before it streamed."""
    base = base_weights(jets, cfg["use_physics_weights"], negative)
    labels = jets["flavour_label"]
    present = [c for c in range(len(class_names)) if np.any(labels == c)]
    rw = Reweighter([], [], {}, {})
    if cfg["mode"] == "pt_to_signal":
        target = class_names.index(cfg["target"])
        is_target = labels == target
        rw.variables = list(cfg["variables"])
        for v in rw.variables:
            inner = np.quantile(jets[v][is_target], np.linspace(0, 1, cfg["bins"] + 1))[1:-1]
            rw.edges.append(np.concatenate([[-np.inf], np.unique(inner), [np.inf]]))
        index = rw.bins(jets)
        shape = tuple(len(e) - 1 for e in rw.edges)

        def histogram(sel):
            flat = np.ravel_multi_index(tuple(i[sel] for i in index), shape)
            hist = np.bincount(flat, weights=base[sel], minlength=int(np.prod(shape)))
            hist = hist.reshape(shape)
            return hist / hist.sum()

        target_hist = histogram(is_target)
        for cls in present:
            if cls != target:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(
                        histogram(labels == cls) > 0, target_hist / histogram(labels == cls), 0.0
                    )
                rw.ratios[cls] = np.clip(ratio, 0.0, cfg["max_weight"])
    if cfg["balance_classes"]:
        weighted = rw.apply(jets, base).astype(np.float64)
        mean_total = weighted.sum() / len(present)
        rw.class_scale = {c: mean_total / weighted[labels == c].sum() for c in present}
    rw.norm = len(jets) / np.sum(np.abs(rw.apply(jets, base).astype(np.float64)))
    return rw


@pytest.mark.parametrize("negative", ["abs", "keep", "zero"])
@pytest.mark.parametrize("variables", [["pt"], ["pt", "eta"]])
def test_streamed_fit_equals_whole_split_fit(variables, negative):
    """Fitted a block at a time, in the split's order, the reweighter and the weights it gives
    are those of the whole-split fit, bit for bit (physics weights spanning decades, 13 %
    of them negative)."""
    rng = np.random.default_rng(3)
    n = 200_003
    jets = np.zeros(
        n,
        [
            ("flavour_label", np.int32),
            ("weight", np.float32),
            ("pt", np.float32),
            ("eta", np.float32),
        ],
    )
    jets["flavour_label"] = rng.integers(0, 3, n)
    jets["weight"] = rng.lognormal(0.0, 4.0, n)  # sums that depend on the order
    jets["weight"][rng.random(n) < 0.13] *= -1
    jets["pt"] = 20 + rng.exponential(40.0 + 10 * jets["flavour_label"], n)
    jets["eta"] = rng.normal(0.0, 1.0 + jets["flavour_label"] / 4, n)
    cfg = {
        "mode": "pt_to_signal",
        "target": "sig",
        "variables": variables,
        "bins": 9,
        "use_physics_weights": True,
        "balance_classes": True,
        "max_weight": 50.0,
    }
    names = ["qcd", "sig", "bib"]
    labels, counts = np.unique(jets["flavour_label"], return_counts=True)
    classes = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    targets = {v: jets[v][jets["flavour_label"] == 1][::-1] for v in variables}  # any order
    spec = build(WeightsSpec, cfg)
    blocks = lambda: (jets[a : a + 7_001] for a in range(0, n, 7_001))  # noqa: E731
    streamed = fit_reweighter(blocks, classes, targets, spec, names, negative)
    whole = whole_split_reweighter(jets, cfg, names, negative)
    base = base_weights(jets, True, negative)
    assert streamed.apply(jets, base).tobytes() == whole.apply(jets, base).tobytes()
    assert streamed.class_scale == whole.class_scale and streamed.norm == whole.norm
    for cls, ratio in whole.ratios.items():
        assert streamed.ratios[cls].tobytes() == ratio.tobytes()


def test_split_equals_the_whole_split_computation(converted, tmp_path):
    """In small buckets, the split writes what the in-memory computation gives: each split
    is its inputs' jets one after the other, permuted by ``rng.permutation``; the training
    weights are the whole-split fit's; the summary's sums are ``np.sum`` of the split."""
    config, paths = converted
    config = with_prepare(config, mode="pt_to_signal", use_physics_weights=True, bins=6)
    names = ["qcd", "bib", "sig", "sig40"]
    inputs = [paths[n] for n in names]
    outputs = {s: str(tmp_path / f"{s}.h5") for s in SPLITS}
    report = split(
        stage(config, "split"), inputs, outputs, str(tmp_path / "s.json"), shuffle_bytes=SMALL
    )
    prep = config["prepare"]
    samples = {s["name"]: s for s in config["samples"]}
    written = {s: read(outputs[s]) for s in SPLITS}
    for i, s in enumerate(SPLITS):
        parts = []
        for name, path in zip(names, inputs, strict=True):
            jets = read(path)
            if samples[name]["role"] == "test":
                which = np.full(len(jets), SPLITS.index("test"))
            else:
                u = event_uniform(name, jets["eventNumber"], prep["seed"])
                which = assign_splits(u, [prep["fractions"][f] for f in SPLITS])
            parts.append(jets[which == i])
        expected = np.concatenate(parts)
        expected = expected[np.random.default_rng([prep["seed"], i, 0]).permutation(len(expected))]
        for field in ("eventNumber", "pt", "weight", "flavour_label"):
            assert (written[s][field] == expected[field]).all(), (s, field)
    class_names = config["class_names"]
    whole = whole_split_reweighter(written["train"], prep["weights"], class_names)
    for s in SPLITS:
        base = base_weights(written[s], True, prep["negative_weights"])
        assert written[s]["train_weight"].tobytes() == whole.apply(written[s], base).tobytes()
    for row in report["rows"]:
        table = written[row["split"]]
        sel = (table["sample"] == sorted(names).index(row["sample"])) & (
            table["flavour_label"] == class_names.index(row["class"])
        )
        assert row["jets"] == sel.sum()
        assert row["sum_weight"] == table["weight"][sel].astype(np.float64).sum()
        assert row["sum_train_weight"] == table["train_weight"][sel].astype(np.float64).sum()
