"""Typed stage contracts: the same contract from the YAML file (by hand) as from what a rule
passes (the resolved file Snakemake writes, plus a name); per-stage digests; the resolved
file is rewritten only when its content changes."""

import json
import os

import pytest
import yaml
from conftest import REPO, snakemake

from hepsnake import paths
from hepsnake.config import (
    STAGES,
    build,
    contract,
    read_config,
    stage_digest,
    to_data,
    write_resolved,
)
from hepsnake.errors import HepsnakeError


def every_contract(resolved) -> dict:
    """Every stage's contract for every name it runs with."""
    config = resolved.config
    names = {
        "simulate": [{"sample": t} for t in config["simulate"]["samples"]],
        "convert": [{"sample": s["name"]} for s in config["samples"]],
        "tune": [{"study": s} for s in config["tune"]],
        "study": [{"study": s} for s in config["tune"]],
    }
    for stage in ("train", "predict", "evaluate", "export"):
        names[stage] = [{"model": m} for m in config["models"]]
    out = {}
    for stage in STAGES:
        for name in names.get(stage, [{}]):
            out[(stage, *name.values())] = contract(resolved, stage, **name)
    return out


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """A workdir where ``snakemake -n --configfile config/tiny.yaml`` wrote the resolved file."""
    workdir = tmp_path_factory.mktemp("contracts")
    (workdir / "config").mkdir()
    for item in (REPO / "config").iterdir():
        target = workdir / "config" / item.name
        if item.is_dir():
            os.symlink(item, target)
        else:
            target.write_text(item.read_text())
    snakemake(workdir, "-n", "--configfile", "config/tiny.yaml")
    return workdir


def test_the_rule_and_the_yaml_file_give_the_same_contracts(dry_run, monkeypatch):
    monkeypatch.chdir(dry_run)
    resolved_file = dry_run / paths.RESOLVED_CONFIG
    assert resolved_file.is_file()
    by_hand = every_contract(read_config("config/tiny.yaml"))
    by_rule = every_contract(read_config(str(resolved_file)))
    assert by_hand.keys() == by_rule.keys()
    assert len(by_hand) == 8 + 8 + 4 * 4 + 2 + 5  # one per stage and name
    for key, value in by_hand.items():
        assert by_rule[key] == value, key
        # in the same order too (a mapping's order is the order of output fields)
        assert json.dumps(to_data(by_rule[key])) == json.dumps(to_data(value)), key
        assert build(type(value), to_data(value)) == value, key  # the data round-trips


def test_a_stage_digest_changes_only_with_what_the_stage_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    before = read_config("config/tiny.yaml")
    models = tmp_path / "models"
    models.mkdir()
    for item in (REPO / "config" / "models").iterdir():
        (models / item.name).write_text(item.read_text())
    baseline = models / "baseline.yaml"
    baseline.write_text(baseline.read_text().replace("lr: 0.003", "lr: 0.001"))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(f"extends: config/tiny.yaml\nmodel_dir: {models}\n")
    after = read_config(str(overlay))
    for stage, names in [
        ("train", {"model": "baseline"}),
        ("report", {}),  # holds the whole config's hash
    ]:
        assert stage_digest(before, stage, **names) != stage_digest(after, stage, **names)
    for stage, names in [
        ("train", {"model": "adversarial"}),
        ("evaluate", {"model": "baseline"}),
        ("export", {"model": "baseline"}),
        ("convert", {"sample": "qcd"}),
        ("split", {}),
        ("norm", {}),
    ]:
        assert stage_digest(before, stage, **names) == stage_digest(after, stage, **names)


def test_the_resolved_file_is_written_only_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = read_config("config/tiny.yaml")
    target = tmp_path / "resolved.yaml"
    assert write_resolved(resolved, target)
    stamp = target.stat().st_mtime_ns
    assert not write_resolved(read_config("config/tiny.yaml"), target)
    assert target.stat().st_mtime_ns == stamp
    data = yaml.safe_load(target.read_text())
    assert sorted(data["models"]) == sorted(resolved.config["models"])
    assert list(data["studies"]) == ["tiny"]


def test_a_stage_needs_its_name_and_an_inline_json_config_is_gone(monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = read_config("config/tiny.yaml")
    with pytest.raises(HepsnakeError, match="needs --model NAME"):
        contract(resolved, "train")
    with pytest.raises(HepsnakeError, match="no model named 'nope'"):
        contract(resolved, "train", model="nope")
    with pytest.raises(HepsnakeError, match="file not found"):
        read_config('{"class_names": ["a", "b"]}')


def test_defaults_come_from_the_schema(monkeypatch):
    """A model file that sets nothing but its encoder gets every default of the schema."""
    monkeypatch.chdir(REPO)
    resolved = read_config("config/tiny.yaml")
    train = contract(resolved, "train", model="adversarial")
    adversarial = yaml.safe_load((REPO / "config" / "models" / "adversarial.yaml").read_text())
    assert train.model.adversarial.weight == adversarial["adversarial"]["lambda"]
    assert train.model.model.head.dropout == 0.0  # schema default
    assert train.model.training.plateau.factor == 0.5
    assert train.model.model.init_hidden("tracks") == (32,)  # the model's default init net
    reader = contract(resolved, "convert", sample="qcd").reader  # the toy's sets neither
    assert reader.entry == "jet" and reader.unit == "GeV"
