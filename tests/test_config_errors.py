"""Config errors are one line naming the file, the key path and what is allowed, the same line
under Snakemake (``snakemake -n``) as from the ``hepsnake`` command."""

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import snakemake

from hepsnake.config import load, load_model
from hepsnake.errors import HepsnakeError

SAMPLE_TYPO = "samples: [{name: a, files: [a.root], reader: toy, lable: qcd}]\n"
CASES = {
    # an inline sample's key typo names the key, not "not valid under any of the given schemas"
    "sample_key": (
        SAMPLE_TYPO,
        "my.yaml: samples/0/lable: 'lable' was unexpected (allowed keys: files, label, name,",
    ),
    # a reader type typo says the type and the allowed types
    "reader_type": (
        "readers: {toy: {type: flatt, tree: jets, jets: {pt: jet_pt}}}\n",
        "my.yaml: readers/toy/type: 'flatt' is not one of ['flat', 'physlite']",
    ),
    # blamed on training_overrides in the config, not on a model file
    "overrides": (
        "training_overrides: {max_epoch: 2}\n",
        "my.yaml: training_overrides/max_epoch: 'max_epoch' was unexpected (allowed keys:",
    ),
    # a sample parameter as an input: refused with the config, no std_floor advice
    "parameter_input": (
        "inputs: {variables: {jets: [pt, mS]}}\n",
        "my.yaml: inputs/variables/jets/1: 'mS' is a sample parameter (samples' params), not a",
    ),
    # a syntax error in a file hepsnake reads (here the extended file): file and line
    "yaml_syntax": (
        None,
        "broken.yaml: line 4, column 1: not valid YAML: could not find expected ':'"
        " (while scanning a simple key at line 3)",
    ),
}


def write_case(workdir: Path, case: str) -> Path:
    body, _ = CASES[case]
    mine = workdir / "my.yaml"
    if body is None:
        (workdir / "broken.yaml").write_text("class_names: [a, b]\nconvert:\nbroken\n")
        mine.write_text("extends: broken.yaml\n")
    else:
        mine.write_text("extends: config/config.yaml\n" + body)
    return mine


def hepsnake_line(workdir: Path, config: str) -> list[str]:
    """stderr lines of ``hepsnake convert --config CONFIG`` run in ``workdir`` (exit 1)."""
    exe = shutil.which("hepsnake")
    assert exe
    cmd = [exe, "convert", "--config", config, "--sample", "a"]
    cmd += ["--output", "a.h5", "--summary", "a.json", "--no-progress"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.strip().splitlines()


def snakemake_errors(workdir: Path, *args: str) -> list[str]:
    """The error lines of a failing ``snakemake -n`` in ``workdir``."""
    proc = snakemake(workdir, "-n", *args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return [line for line in proc.stderr.splitlines() if "error" in line.lower()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_the_same_under_snakemake_and_hepsnake(case, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    write_case(workdir, case)
    needle = CASES[case][1]
    with pytest.raises(HepsnakeError) as err:
        load("my.yaml")
    assert str(err.value).startswith(needle), str(err.value)
    assert "std_floor" not in str(err.value)
    assert hepsnake_line(workdir, "my.yaml") == [f"hepsnake convert: error: {err.value}"]
    assert snakemake_errors(workdir, "--configfile", "my.yaml") == [f"hepsnake: error: {err.value}"]
    assert not (workdir / "a.h5").exists() and not (workdir / "results").exists()


def test_model_yaml_syntax_error_names_the_model_file(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    (workdir / "config" / "models" / "broken.yaml").write_text("model:\n  dim: [32\n")
    (workdir / "my.yaml").write_text("extends: config/config.yaml\nmodels: [baseline, broken]\n")
    config = load("my.yaml")
    with pytest.raises(HepsnakeError) as err:
        load_model(config, "broken")
    line = str(err.value)
    assert line.startswith("config/models/broken.yaml: line 3, column 1: not valid YAML:"), line
    assert "<unicode string>" not in line
    assert snakemake_errors(workdir, "--configfile", "my.yaml") == [f"hepsnake: error: {line}"]


def test_default_config_errors_name_config_yaml(workdir):
    """Without --configfile the toy default is read, and its errors name it too."""
    default = workdir / "config" / "config.yaml"
    default.write_text(default.read_text().replace("compression: lzf", "compression: zstd"))
    assert snakemake_errors(workdir) == [
        "hepsnake: error: config/config.yaml: convert/compression: 'zstd' is not one of"
        " ['none', 'lzf', 'gzip']"
    ]


def test_unexpected_failures_are_one_line_too(monkeypatch, capsys):
    """An exception no check foresaw still gives one line naming the verb (no traceback);
    HEPSNAKE_DEBUG=1 shows the traceback."""
    from hepsnake import cli

    def broken(args: argparse.Namespace) -> None:
        raise ValueError("something nobody checked\nsecond line")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=broken, verb="norm")
    monkeypatch.setattr(cli, "parser", lambda: parser)
    assert cli.main([]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "hepsnake norm: error: unexpected ValueError: something nobody checked"
        " (HEPSNAKE_DEBUG=1 shows the traceback)"
    ]
    monkeypatch.setenv("HEPSNAKE_DEBUG", "1")
    with pytest.raises(ValueError, match="nobody checked"):
        cli.main([])
