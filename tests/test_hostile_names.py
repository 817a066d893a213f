"""Hostile sample names never reach a shell: the one name pattern rejects them (sheet and
inline), and every placeholder in the rules' shell commands is quoted."""

import re
from pathlib import Path

import pytest
from conftest import REPO, snakemake

from hepsnake.config import load
from hepsnake.errors import HepsnakeError

HOSTILE = ["x$(touch PWNED)", "x`touch PWNED`", "a b"]
# a placeholder without :q (wildcards, input, output, log, params)
UNQUOTED = re.compile(
    r"\{(wildcards\.[a-z_0-9]+|input(\.[a-z_0-9]+)?|output(\.[a-z_0-9]+)?|log|params\.[a-z_0-9]+)\}"
)


def hostile_config(workdir: Path, name: str) -> Path:
    """A toy config whose sheet's second sample (line 3) is called ``name``."""
    (workdir / "hostile.tsv").write_text(
        "name\tfiles\treader\trole\tlabel\n"
        "qcd\tresults/toy/qcd.root\ttoy\ttrain\tqcd\n"
        f"{name}\tresults/toy/sig.root\ttoy\ttrain\tsig\n"
    )
    config = workdir / "hostile.yaml"
    config.write_text("extends: config/config.yaml\nsamples: hostile.tsv\n")
    return config


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sheet_name_is_refused_by_the_config(name, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    config = hostile_config(workdir, name)
    with pytest.raises(HepsnakeError) as err:
        load(str(config))
    assert str(err.value).startswith(
        f"hostile.tsv: line 3, column 'name': {name!r} is not a valid name"
    )
    assert not (workdir / "PWNED").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sheet_name_stops_snakemake_before_any_job(name, workdir):
    hostile_config(workdir, name)
    proc = snakemake(workdir, "--cores", "1", "--configfile", "hostile.yaml", check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"hepsnake: error: hostile.tsv: line 3, column 'name': {name!r} is not a valid name:"
        " letters, digits, '_', '.' and '-' only, starting with a letter or digit"
    ], proc.stderr
    assert not (workdir / "PWNED").exists() and not (workdir / "results").exists()


def test_hostile_inline_and_model_names_are_refused(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    inline = workdir / "inline.yaml"
    inline.write_text(
        "extends: config/config.yaml\n"
        "samples: [{name: 'x;touch PWNED', files: [a.root], reader: toy}]\n"
    )
    with pytest.raises(HepsnakeError, match=r"^inline.yaml: samples/0/name: .* not a valid name"):
        load("inline.yaml")
    inline.write_text("extends: config/config.yaml\nmodels: ['$(touch PWNED)']\n")
    with pytest.raises(HepsnakeError, match=r"^inline.yaml: models/0: .* not a valid name"):
        load("inline.yaml")
    assert not (workdir / "PWNED").exists()


def test_every_shell_placeholder_is_quoted():
    rules = sorted((REPO / "workflow" / "rules").glob("*.smk"))
    assert rules
    for path in rules:
        text = path.read_text()
        assert "shell:" in text or path.name == "common.smk", path
        found = UNQUOTED.findall(text)
        assert not found, (path.name, found)
