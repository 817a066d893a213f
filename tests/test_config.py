import dataclasses
import re
from pathlib import Path

import pytest
from conftest import REPO, default_config

from hepsnake.config import contract, load, load_samples, parse_params, read_config, validate
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
    with pytest.raises(HepsnakeError, match="samples/0/label: label 'top' is not one of class"):
        config_factory([{**base, "label": "top"}])
    with pytest.raises(HepsnakeError, match="samples/0/reader: unknown reader 'nope'"):
        config_factory([{**base, "reader": "nope"}])
    with pytest.raises(HepsnakeError, match="control sample needs label 'data' or 'mc'"):
        config_factory([{**base, "role": "control", "label": "qcd"}])
    with pytest.raises(HepsnakeError, match=r"samples/1/name: duplicate sample name 'x' \(first"):
        config_factory([base, base])
    with pytest.raises(HepsnakeError, match=r"samples/0/role: 'trian' is not one of \['train'"):
        config_factory([{**base, "role": "trian"}])


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
    with pytest.raises(HepsnakeError, match=r"s.tsv: line 1: unknown column 'colour'"):
        load_samples(str(sheet))
    with pytest.raises(HepsnakeError, match="'mS' is not NAME=NUMBER"):
        parse_params("mS")


HEADER = "name\tfiles\treader\trole\tlabel\tparams\txsec\n"
GOOD = "a\tf.root\ttoy\ttrain\tqcd\t\t1\n"


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (
            [HEADER, GOOD, "b\tg.root\ttoy\ttrian\tqcd\t\t\n"],
            "line 3, column 'role': 'trian' is not one of",
        ),
        (
            [HEADER, "# a comment\n", "b\t\ttoy\n"],
            "line 3, column 'files': required key is missing",
        ),
        (["name\treader\n", "b\ttoy\n"], "line 2, column 'files': required key is missing"),
        (
            [HEADER, GOOD, GOOD],
            "line 3, column 'name': duplicate sample name 'a' (first at line 2)",
        ),
        ([HEADER, "b\tg.root\ttoy\ttrain\tqcd\tmS\t\n"], "line 2, column 'params': 'mS' is not"),
        (
            [HEADER, "b\tg.root\ttoy\ttrain\tqcd\t\tbig\n"],
            "line 2, column 'xsec': 'big' is not of type",
        ),
        ([HEADER, "b c\tg.root\ttoy\n"], "line 2, column 'name': 'b c' is not a valid name"),
        ([HEADER, "b\tg.root\tnope\n"], "line 2, column 'reader': unknown reader 'nope'"),
    ],
)
def test_sheet_rows_go_through_the_sample_schema(lines, needle, tmp_path, monkeypatch):
    """A bad sheet row is one error naming the sheet, its line and the column."""
    monkeypatch.chdir(tmp_path)
    Path("s.tsv").write_text("".join(lines))
    config = default_config() | {"samples": "s.tsv"}
    with pytest.raises(HepsnakeError) as err:
        validate(config)
    assert str(err.value).startswith(f"s.tsv: {needle}"), str(err.value)
    assert "\n" not in str(err.value)


def test_extends_merges_onto_the_named_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    tiny = load("config/tiny.yaml")
    full = load("config/config.yaml")
    assert tiny["simulate"]["samples"]["qcd"]["n_jets"] == 3000  # tiny's own key wins
    assert tiny["simulate"]["masses"] == full["simulate"]["masses"]  # the rest is config.yaml's
    assert tiny["training_overrides"] == {"max_epochs": 2, "batch_size": 500}
    assert "extends" not in tiny
    overlay = tmp_path / "over.yaml"
    overlay.write_text("extends: config/tiny.yaml\nconvert: {compresion: gzip}\n")
    # an error names the file that wrote the key: the overlay here, the base file below
    with pytest.raises(HepsnakeError, match=f"^{overlay}: convert/compresion: 'compresion' was"):
        load(str(overlay))
    overlay.write_text("extends: config/tiny.yaml\nmodels: [baseline]\n")
    assert load(str(overlay))["models"] == ["baseline"]
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(HepsnakeError, match=r"extends: .* extends itself"):
        load(str(loop))
    loop.write_text("extends: 3\n")
    with pytest.raises(HepsnakeError, match=r"loop.yaml: extends: 3 is not of type 'string'"):
        load(str(loop))
    missing = tmp_path / "m.yaml"
    missing.write_text("extends: nowhere.yaml\n")
    with pytest.raises(HepsnakeError, match=r"^nowhere.yaml: file not found"):
        load(str(missing))


def test_errors_name_the_file_that_wrote_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    base = tmp_path / "base.yaml"
    base.write_text((REPO / "config" / "config.yaml").read_text() + "\nfoo: 1\n")
    over = tmp_path / "over.yaml"
    over.write_text(f"extends: {base}\nmodels: [baseline]\n")
    with pytest.raises(HepsnakeError, match=f"^{base}: foo: 'foo' was unexpected"):
        load(str(over))


def test_mode_only_keys_and_guard(monkeypatch):
    monkeypatch.chdir(REPO)
    config = default_config()
    config["prepare"] = {}  # weights.mode defaults to none: no target needed
    assert validate(config)["prepare"]["weights"]["mode"] == "none"
    config = default_config()
    config["prepare"]["weights"] = {"mode": "pt_to_signal"}
    with pytest.raises(HepsnakeError, match=r"^config: prepare/weights/target: required with mode"):
        validate(config)
    config = default_config()
    config["prepare"]["label_map"] = {"variable": "width", "map": {"qcd": [0]}}
    with pytest.raises(
        HepsnakeError, match=r"jets/4: truth leak: 'width' is the prepare.label_map"
    ):
        validate(config)
    config = default_config()
    config["inputs"]["variables"]["jets"].append("mS")
    with pytest.raises(HepsnakeError, match="jets/5: 'mS' is a sample parameter") as err:
        validate(config)
    assert "std_floor" not in str(err.value)


def test_stage_contracts_hold_only_what_the_stage_reads(monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = read_config("config/config.yaml")
    part = contract(resolved, "convert", sample="qcd")
    assert {f.name for f in dataclasses.fields(part)} == {
        "class_names",
        "sample",
        "reader",
        "convert",
        "run_parameters",
    }
    assert part.sample.name == "qcd" and part.reader.type == "flat" and part.reader.tree == "jets"
    assert contract(resolved, "simulate", sample="bib").sample.process == "bib"
    with pytest.raises(HepsnakeError, match="no sample named 'nope'"):
        contract(resolved, "convert", sample="nope")


def test_schemas_are_package_data():
    """A non-editable install ships the schemas config.load reads (symlinks in the tree)."""
    import tomllib

    from hepsnake.config import MODEL_SCHEMA, SCHEMA

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = pyproject["tool"]["setuptools"]["package-data"]["hepsnake.config"]
    assert {SCHEMA.name, MODEL_SCHEMA.name} <= set(declared)
    assert SCHEMA.parent.name == MODEL_SCHEMA.parent.name == "config"
    assert SCHEMA.read_text() == (REPO / "workflow" / "schemas" / SCHEMA.name).read_text()
