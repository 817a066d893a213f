"""A checkpoint is data, never code: pickled objects are refused before anything in them runs,
and the predict path does not import Lightning."""

import builtins
import json
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO, TINY, checkpoint, prepared_toy

MARKER = "PWNED"


class Payload:
    """Unpickling this object opens (creates) the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    fractions = {"fractions": {"train": 0.4, "val": 0.3, "test": 0.3}}
    config, outputs = prepared_toy(root, {"qcd": 300, "bib": 150, "sig": 150}, 2, prepare=fractions)
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    return config, root, outputs, norm


def hostile_checkpoint(data, tmp_path):
    """A real checkpoint whose hyperparameters also hold the payload."""
    content = torch.load(checkpoint(data, "good"), weights_only=True)
    marker = tmp_path / MARKER
    content["hyper_parameters"]["norm"] = Payload(str(marker))
    path = tmp_path / "evil.ckpt"
    torch.save(content, path)
    return path, marker


def test_the_payload_is_live(data, tmp_path):
    """Control: an unrestricted load of the file does run the payload."""
    path, marker = hostile_checkpoint(data, tmp_path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def run(verb_args):
    return subprocess.run(
        [shutil.which("hepsnake"), *verb_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("verb", ["predict", "export"])
def test_pickled_payload_is_refused(verb, data, tmp_path):
    _, _, outputs, _ = data
    path, marker = hostile_checkpoint(data, tmp_path)
    out = tmp_path / "out"
    args = {
        "predict": ["--test", outputs["test"], "--output", str(out)],
        "export": ["--test", outputs["test"], "--val", outputs["val"], "--outdir", str(out)],
    }[verb]
    proc = run([verb, "--model", "m", "--checkpoint", str(path), *args])
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"hepsnake {verb}: error: {path}: refused"), lines[0]
    assert not marker.exists()
    assert not out.exists()


LIGHTNING_CHECK = """
import json
import sys
from hepsnake.cli import main
rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning"))
print(json.dumps({"rc": rc, "lightning": loaded}))
"""


@pytest.mark.parametrize("verb", ["predict", "export"])
def test_predict_and_export_do_not_import_lightning(verb, data, tmp_path):
    _, _, outputs, _ = data
    ckpt = checkpoint(data, "plain", TINY)
    out = tmp_path / "out"
    args = [verb, "--model", "m", "--checkpoint", ckpt, "--test", outputs["test"]]
    args += {
        "predict": ["--output", str(out)],
        "export": ["--val", outputs["val"], "--outdir", str(out)],
    }[verb]
    proc = subprocess.run(
        [sys.executable, "-c", LIGHTNING_CHECK, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "lightning": []}
    assert out.exists()
