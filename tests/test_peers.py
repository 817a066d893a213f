"""The peers benchmark (benchmarks/peers.py): the configs it gives Salt and UPP describe the
same model and classes as hepsnake's, and its ``--smoke`` run prints every figure (building
the peers' venvs first where they are missing: slow)."""

import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import _peers_salt
import _peers_upp
import peers
from _common import shipped_config

from hepsnake.config import validate

NUMBER = r"[0-9][0-9,.]*"


@pytest.fixture(scope="module")
def config() -> dict:
    samples = [{"name": n, "files": [f"{n}.root"], "reader": "toy", "label": n} for n in ("qcd",)]
    return validate(
        shipped_config() | {"model_dir": str(REPO / "config" / "models"), "samples": samples}
    )


@pytest.mark.parametrize("aux", [False, True])
def test_salt_config_is_hepsnakes_model(config, aux, tmp_path) -> None:
    """Salt's config has gn2.yaml's widths, depth, heads, gated blocks, head, tasks, batch,
    epochs, optimiser and clipping, and reads the norm dict's fields."""
    model = peers.hepsnake_model(config, aux, epochs=3, batch=500)
    net = model["model"]
    assert net["encoder"]["gated"] is True
    assert [t["type"] for t in net["tasks"]] == (
        ["jet_classification", "constituent_classification"] if aux else ["jet_classification"]
    )
    assert all(t.get("mixture", 1) == 1 for t in net["tasks"])
    norm = {
        c: {v: {"mean": 0.0, "std": 1.0} for v in ("a", "b")} for c in config["inputs"]["variables"]
    }
    norm_path = tmp_path / "norm.yaml"
    norm_path.write_text(yaml.safe_dump(norm))
    files = {"train": "t.h5", "val": "v.h5", "test": "s.h5", "class_dict": "c.yaml"}
    a = _peers_salt.arch(model, aux, 500, 3)
    cfg = _peers_salt.config(
        a,
        config["inputs"],
        config["class_names"],
        files | {"norm": str(norm_path)},
        tmp_path,
        tmp_path / "t",
        1,
    )
    salt = cfg["model"]["model"]["init_args"]
    encoder = salt["encoder"]["init_args"]
    assert (encoder["embed_dim"], encoder["num_layers"], encoder["attn_kwargs"]["num_heads"]) == (
        net["dim"],
        net["encoder"]["layers"],
        net["encoder"]["heads"],
    )
    assert encoder["dense_kwargs"]["gated"] is True
    assert encoder["num_registers"] == net["encoder"]["registers"] == 1
    assert [i["input_name"] for i in salt["init_nets"]] == ["tracks", "clusters"]
    assert (
        salt["init_nets"][0]["dense_config"]["hidden_layers"]
        == net["init_nets"]["default"]["hidden"]
    )
    tasks = [t["init_args"] for t in salt["tasks"]["init_args"]["modules"]]
    assert tasks[0]["label"] == "flavour_label" and tasks[0]["use_class_dict"]
    assert tasks[0]["dense_config"]["hidden_layers"] == net["head"]["hidden"]
    assert tasks[0]["dense_config"]["output_size"] == len(config["class_names"])
    if aux:
        origin = net["tasks"][1]
        assert (tasks[1]["label"], tasks[1]["class_names"], tasks[1]["weight"]) == (
            origin["label"],
            origin["classes"],
            origin["weight"],
        )
    assert len(tasks) == 1 + aux
    assert cfg["data"]["batch_size"] == 500 and cfg["trainer"]["max_epochs"] == 3
    assert cfg["data"]["variables"] == {c: ["a", "b"] for c in config["inputs"]["variables"]}
    lrs = cfg["model"]["lrs_config"]
    assert lrs["max"] == model["training"]["lr"]
    assert lrs["max"] / lrs["initial"] == pytest.approx(25.0)  # OneCycleLR's default
    assert cfg["trainer"]["gradient_clip_val"] == model["training"]["gradient_clip"]


def test_upp_config_uses_hepsnakes_classes(tmp_path) -> None:
    """UPP gets one component per class file, the classes by their flavour_label cut, and
    countup towards the signal only when resampling."""
    inputs = _peers_upp.sample_files(tmp_path, 3000, "lzf")
    for resample in ("none", "up"):
        cfg = _peers_upp.upp_config(inputs, tmp_path, resample, tmp_path / "classes.yaml")
        assert [c["classes"] for c in cfg["components"]] == [["qcd"], ["sig"], ["bib"]]
        assert [c["sample"]["pattern"] for c in cfg["components"]] == [
            p.rsplit("/", 1)[-1] for p in inputs
        ]
        assert cfg["global"]["class_config"] == str(tmp_path / "classes.yaml")
        if resample == "none":
            assert "resampling" not in cfg
            assert {c["num_global_objects"] for c in cfg["components"]} == {-1}
        else:
            assert cfg["resampling"]["method"] == "countup"
            assert cfg["resampling"]["target"] == "sig"


@pytest.mark.slow
def test_peers_smoke() -> None:
    """Every section of ``peers.py --smoke`` prints its rows (a peer whose venv cannot be
    built is skipped with one line saying so)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "peers.py"), "--smoke"],
        cwd=REPO / "benchmarks",
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    skipped = set(re.findall(r"^peers: skipping (\w+): its venv cannot be built", out, re.M))
    expected = {"startup": [r"start-up split", r"start-up norm"]}
    if "salt" not in skipped:
        expected["train"] = [
            rf"train jets/s, {v} \(wall\)" for v in ("jet only", "jet \\+ track origin")
        ]
        expected["auc"] = [
            rf"test AUC sig vs QCD, {v}" for v in ("jet only", "jet \\+ track origin")
        ]
        expected["onnx"] = [rf"ONNX latency per jet, {n} tracks" for n in (0, 10, 40)]
    if "upp" not in skipped:
        expected["prepare"] = [
            r"prepare 20,000 jets, no resampling: jets/s",
            r"prepare 20,000 jets, upsampling",
        ]
    for section, figures in expected.items():
        for figure in figures:
            row = rf"^\| {figure}.* \| {NUMBER}× \|"  # a figure with a ratio
            assert re.search(row, out, re.M), (section, figure, out[-4000:])
    for auc in re.findall(r"^\| test AUC[^|]*\| Salt \| ([0-9.]+) \| ([0-9.]+) \|", out, re.M):
        assert all(0.5 < float(a) <= 1.0 for a in auc), auc


def test_auc_note_over_seeds() -> None:
    """Over several seeds the AUC row compares the means (the difference ± its error, each
    seed listed) and judges the target on the mean difference; one seed gives its difference."""
    note = peers.auc_note(0.87, [1, 2, 3], [0.82, 0.81, 0.83], [0.815, 0.81, 0.82])
    # means 0.82 and 0.815, standard errors 0.00577 and 0.00289: 0.00645 together
    assert "hepsnake − Salt -0.0050 ± 0.0065" in note
    assert "1: 0.8200 / 0.8150" in note and note.endswith("(target ≥ −0.002: NOT met)")
    one = peers.auc_note(0.87, [1], [0.82], [0.819])
    assert "hepsnake − Salt -0.0010" in one and "±" not in one and one.endswith("met)")
    assert "NOT" not in one
