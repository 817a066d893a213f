import json
import re

import pytest
from conftest import REPO, default_config

from hepsnake.config import load, load_samples, parse_params, stage_config, validate
from hepsnake.errors import HepsnakeError


def test_shipped_config_validates_with_defaults(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load("config/config.yaml")
    names = [s["name"] for s in config["samples"]]
    assert names[:2] == ["qcd", "bib"] and "sig_mS40" in names
    sig = next(s for s in config["samples"] if s["name"] == "sig_mS16")
    assert sig["params"] == {"mS": 16.0} and sig["role"] == "train" and sig["label"] == "sig"
    assert config["convert"]["compression"] == "lzf"


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c.update(convrt={}), "'convrt' was unexpected"),
        (lambda c: c["convert"].update(compresion="lzf"), "'compresion' was unexpected"),
        (lambda c: c["convert"].update(compression="zstd"), "config: convert/compression"),
        (lambda c: c["convert"].update(cuts=["pt >> 3"]), "config: convert/cuts/0"),
        (lambda c: c["readers"]["toy"].update(jetz={}), "'jetz' was unexpected"),
        (
            lambda c: c["prepare"].update(fractions={"train": 0.8, "val": 0.1, "test": 0.2}),
            "config: prepare/fractions: sum to 1.1, not 1",
        ),
        (
            lambda c: c["prepare"].update(fractions={"train": 0.9, "test": 0.1}),
            "config: prepare/fractions: needs exactly train, val and test",
        ),
        (
            lambda c: c["prepare"]["weights"].update(mode="pt_to_signal", target="top"),
            "config: prepare/weights/target: 'top' is not one of class_names",
        ),
        (
            lambda c: c["prepare"].update(resample="up"),  # balance_classes stays true
            "config: prepare/resample: 'up' resampling replaces the weights",
        ),
    ],
)
def test_bad_keys_are_named(mutate, needle, monkeypatch):
    monkeypatch.chdir(REPO)
    config = default_config()
    mutate(config)
    with pytest.raises(HepsnakeError, match=re.escape(needle)):
        validate(config)


def test_sample_checks(config_factory):
    base = {"name": "x", "files": ["a.root"], "reader": "toy"}
    with pytest.raises(HepsnakeError, match="label 'top' is not one of class_names"):
        config_factory([{**base, "label": "top"}])
    with pytest.raises(HepsnakeError, match="unknown reader 'nope'"):
        config_factory([{**base, "reader": "nope"}])
    with pytest.raises(HepsnakeError, match="control sample needs label 'data' or 'mc'"):
        config_factory([{**base, "role": "control", "label": "qcd"}])
    with pytest.raises(HepsnakeError, match="duplicate sample name 'x'"):
        config_factory([base, base])


def test_sample_sheet(tmp_path):
    sheet = tmp_path / "s.tsv"
    sheet.write_text(
        "# comment\nname\tfiles\treader\trole\tlabel\tparams\txsec\n"
        "a\tf1.root,f2.root\ttoy\ttrain\tsig\tmS=5;ctau=2\t0.5\n"
        "b\tg.root\ttoy\tcontrol\tdata\t\t\n"
    )
    a, b = load_samples(str(sheet))
    assert a["files"] == ["f1.root", "f2.root"] and a["params"] == {"mS": 5.0, "ctau": 2.0}
    assert a["xsec"] == 0.5 and b["xsec"] == 1.0 and b["params"] == {}
    sheet.write_text("name\tfiles\treader\tcolour\nx\ty\ttoy\tred\n")
    with pytest.raises(HepsnakeError, match="unknown column 'colour'"):
        load_samples(str(sheet))
    with pytest.raises(HepsnakeError, match="'mS' is not NAME=NUMBER"):
        parse_params("mS")


def test_stage_slices_hold_only_what_the_stage_reads(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load("config/config.yaml")
    part = json.loads(stage_config(config, "convert", sample="qcd"))
    assert set(part) == {"class_names", "samples", "readers", "convert"}
    assert list(part["readers"]) == ["toy"] and [s["name"] for s in part["samples"]] == ["qcd"]
    assert load(stage_config(config, "convert", sample="qcd")) == part
    sim = json.loads(stage_config(config, "simulate", toy="bib"))
    assert list(sim["simulate"]["samples"]) == ["bib"]


def test_schemas_are_package_data():
    """A non-editable install ships the schemas config.load reads (symlinks in the tree)."""
    import tomllib

    from hepsnake.config import MODEL_SCHEMA, SCHEMA

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = pyproject["tool"]["setuptools"]["package-data"]["hepsnake"]
    assert {SCHEMA.name, MODEL_SCHEMA.name} <= set(declared)
    assert SCHEMA.parent.name == MODEL_SCHEMA.parent.name == "hepsnake"
