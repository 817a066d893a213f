"""Our files in the FTAG tools' conventions, read with atlas-ftag-tools itself: the toy and the
PHYSLITE example converted and prepared, several converted files read at once by H5Reader,
the generated classes.yaml loaded as ftag labels, Salt's class dict and puma's column names."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import skhep_testdata
import yaml
from conftest import REPO, checkpoint, prepared_toy, stage
from ftag import Flavours
from ftag.hdf5 import H5Reader
from ftag.labels import LabelContainer

from hepsnake.config import resolve, validate
from hepsnake.evaluate import plots
from hepsnake.evaluate.predict import predict
from hepsnake.names import input_fields, prob_column, prob_suffix, transformed_field
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.prepared import convert_samples

PHYSLITE = "uproot-physlite-rntuple_v1-0-0-0.root"


def normalise(config: dict, root: Path, outputs: dict[str, str]) -> None:
    """The norm stage on the train split: ``norm.yaml``, ``class.yaml``, ``classes.yaml``."""
    norm_stats(
        stage(config, "norm"),
        outputs["train"],
        str(root / "norm.yaml"),
        str(root / "class.yaml"),
        classes_out=str(root / "classes.yaml"),
    )


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("toy")
    config, outputs = prepared_toy(root, {"qcd": 300, "bib": 300, "sig": 300}, seed=3)
    normalise(config, root, outputs)
    return config, root, outputs


@pytest.fixture(scope="module")
def physlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, str]]:
    """The shipped PHYSLITE example, its file and a copy converted as two samples; the first
    split and normalised."""
    root = tmp_path_factory.mktemp("physlite")
    text = (REPO / "config" / "examples" / "physlite_btagging" / "config.yaml").read_text()
    config = yaml.safe_load(text)
    copy = shutil.copy(skhep_testdata.data_path(PHYSLITE), root / "copy.root")
    config["samples"] = [
        {"name": name, "files": [str(path)], "reader": "physlite", "role": "train"}
        for name, path in (("lite_a", skhep_testdata.data_path(PHYSLITE)), ("lite_b", copy))
    ]
    config["model_dir"] = str(REPO / "config" / "models")
    config = validate(config)
    convert_samples(resolve(config), root)
    outputs = {s: str(root / f"{s}.h5") for s in SPLITS}
    split(stage(config, "split"), [str(root / "lite_a.h5")], outputs, str(root / "summary.json"))
    normalise(config, root, outputs)
    return config, root, outputs


def read_all(paths: list[Path]) -> np.ndarray:
    """Every jet field of ``paths``, concatenated with h5py (the reference for H5Reader)."""
    tables = []
    for path in paths:
        with h5py.File(path) as h5:
            tables.append(h5["jets"][:])
    return np.concatenate(tables)


def check_h5reader(paths: list[Path]) -> np.ndarray:
    """H5Reader reads all jet fields of the files together, value for value."""
    expected = read_all(paths)
    reader = H5Reader(paths, batch_size=len(expected), shuffle=False)
    loaded = reader.load({"jets": None}, num_global_objects=len(expected))["jets"]
    assert loaded.dtype.names == expected.dtype.names
    assert len(loaded) == len(expected)
    order = list(expected.dtype.names)  # the batches interleave the files: compare sorted
    got, want = np.sort(loaded, order=order), np.sort(expected, order=order)
    for name in order:
        np.testing.assert_array_equal(got[name], want[name], name)
    return loaded


def test_toy_samples_share_one_jets_dtype_and_h5reader_reads_them_together(toy) -> None:
    config, root, _ = toy
    paths = [root / f"{n}.h5" for n in ("qcd", "bib", "sig")]
    dtypes = set()
    for path in paths:
        with h5py.File(path) as h5:
            dtypes.add(h5["jets"].dtype)
            assert list(h5["jets"].attrs["flavour_label"]) == config["class_names"]
            assert "label" not in h5["jets"].dtype.names
    assert len(dtypes) == 1, dtypes
    jets = check_h5reader(paths)
    is_sig = jets["flavour_label"] == config["class_names"].index("sig")
    assert np.all(jets["mS"][is_sig] == 16.0)
    assert np.all(np.isnan(jets["mS"][~is_sig])) and (~is_sig).any()


def test_physlite_converted_files_read_together(physlite) -> None:
    _, root, _ = physlite
    jets = check_h5reader([root / "lite_a.h5", root / "lite_b.h5"])
    assert np.all(jets["flavour_label"] == -1)  # labels come from prepare.label_map
    assert {"GN2v01_pb", "GN2v01_pc", "GN2v01_pu"} <= set(jets.dtype.names)


@pytest.mark.parametrize("run", ["toy", "physlite"])
def test_prepared_labels_class_dict_and_classes_yaml(run: str, request) -> None:
    config, root, outputs = request.getfixturevalue(run)
    names = config["class_names"]
    with h5py.File(outputs["train"]) as h5:
        jets = h5["jets"][:]
        assert list(h5["jets"].attrs["flavour_label"]) == names
    assert jets.dtype["flavour_label"].kind == "i"
    assert set(np.unique(jets["flavour_label"])) == set(range(len(names)))
    class_dict = yaml.safe_load((root / "class.yaml").read_text())
    assert list(class_dict) == ["jets"] and list(class_dict["jets"]) == ["flavour_label"]
    assert len(class_dict["jets"]["flavour_label"]) == len(names)
    labels = LabelContainer.from_yaml(root / "classes.yaml")
    assert [label.name for label in labels] == names
    for i, label in enumerate(labels):
        assert label.cuts(jets).idx.tolist() == np.flatnonzero(jets["flavour_label"] == i).tolist()
        assert label.px == prob_suffix(label.name)
    if run == "physlite":  # FTAG classes get ftag's own plot labels and colours
        for label in labels:
            assert (label.label, label.colour) == (
                Flavours[label.name].label,
                Flavours[label.name].colour,
            )


@pytest.mark.parametrize("run", ["toy", "physlite"])
def test_norm_dict_is_plain_mean_std_of_prepared_fields(run: str, request) -> None:
    """Salt's reading of norm_dict.yaml: every entry only {mean, std}, keyed by a field of the
    prepared split, whose mean/std over the train split (valid constituents, num_inputs
    slots) are the entry; a transformed input is its own field (log_pt) with its own entry."""
    config, root, outputs = request.getfixturevalue(run)
    inputs = config["inputs"]
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    assert norm.keys() == inputs["variables"].keys()
    with h5py.File(outputs["train"]) as h5:
        for coll, entries in norm.items():
            assert list(entries) == input_fields(stage(config, "norm").inputs)[coll]
            table = h5[inputs["input_map"].get(coll, coll)][:]
            if table.ndim == 2:
                slots = table[:, : inputs["num_inputs"].get(coll)]
                table = slots[slots["valid"]]
            for var, entry in entries.items():
                assert set(entry) == {"mean", "std"}, (coll, var, entry)
                values = table[var].astype(np.float64)
                np.testing.assert_allclose(entry["mean"], values.mean(), rtol=1e-6, atol=1e-9)
                np.testing.assert_allclose(entry["std"], values.std(), rtol=1e-6)
    for coll, per in inputs["transforms"].items():
        for var, transform in per.items():
            assert transformed_field(var, transform) in norm[coll]
            assert var not in norm[coll]
    if run == "toy":
        assert "log_pt" in norm["jets"] and "log_pt" in norm["tracks"]


def test_prediction_columns_are_pumas_for_ftag_classes(physlite) -> None:
    config, root, outputs = physlite
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    ckpt = checkpoint((config, root, None, norm), "lite")
    predict("tiny", ckpt, outputs["test"], str(root / "pred.h5"))
    with h5py.File(root / "pred.h5") as h5:
        fields = set(h5["jets"].dtype.names)
        assert list(h5["jets"].attrs["flavour_label"]) == config["class_names"]
    assert {"tiny_pu", "tiny_pc", "tiny_pb"} <= fields
    assert not {f"tiny_p{c}" for c in config["class_names"]} & fields
    labels = LabelContainer.from_yaml(root / "classes.yaml")
    assert {f"tiny_{label.px}" for label in labels} <= fields


def test_prob_column_names() -> None:
    assert [prob_column("m", c) for c in ("bjets", "cjets", "ujets", "taujets")] == [
        "m_pb",
        "m_pc",
        "m_pu",
        "m_ptau",
    ]
    assert [prob_column("m", c) for c in ("qcd", "sig", "bib", "light", "b")] == [
        "m_pqcd",
        "m_psig",
        "m_pbib",
        "m_plight",
        "m_pb",
    ]
    assert prob_column("m", "sig", "_mS16") == "m_mS16_psig"
    assert prob_column("m", "jets") == "m_pjets"


def roc_limits(monkeypatch: pytest.MonkeyPatch, curves: dict, path: Path) -> list[tuple]:
    """The x and y limits of every panel of the ROC figure ``plot_roc`` draws for ``curves``."""
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, output: drawn.append(fig))
    plots.plot_roc(curves, path, signal="sig", reference="a")
    return [(ax.get_xlim(), ax.get_ylim()) for ax in drawn[0].axes]


def test_roc_axes_do_not_depend_on_the_run(monkeypatch, tmp_path) -> None:
    """Two runs with very different curves get the same axes, so their plots compare."""
    eff = np.linspace(0.01, 1, 200)
    weak = {"a": {"all": (eff, 1 / eff), "qcd": (eff, 1.5 / eff)}}
    strong = {
        "a": {"all": (eff, 1 / eff**6), "qcd": (eff, 1 / eff**9)},
        "b": {"all": (eff, 2 / eff**6), "qcd": (eff, 1 / eff**8)},
    }
    first = roc_limits(monkeypatch, weak, tmp_path / "weak.png")
    second = roc_limits(monkeypatch, strong, tmp_path / "strong.png")
    assert len(first) == len(second) == 4  # two panels, each with its ratio panel
    assert first == second
    assert first[0] == (plots.EFFICIENCY_RANGE, plots.REJECTION_RANGE)
