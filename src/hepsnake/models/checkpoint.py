"""Trained taggers from checkpoints, read as tensors and plain types only.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``: a file holding any other
pickled object is refused before anything in it runs. Nothing here imports Lightning, so the
jobs that only predict or export start fast.
"""

import hashlib
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepsnake.config.contracts import Trained
from hepsnake.config.typed import build
from hepsnake.errors import HepsnakeError
from hepsnake.io.files import RERUN, require_file
from hepsnake.models.tagger import build_tagger

HASH_KEY = "hepsnake_config_sha256"  # checkpoint key: config_sha256 of the hyperparameters
ZIP_MAGIC = b"PK\x03\x04"  # the first bytes of a zip archive
NEEDED = ("model_cfg", "training_cfg", "inputs", "norm", "class_names")


class Hyperparameters(dict):
    """A checkpoint's hyperparameters (plain types); keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def config_sha256(hparams: Mapping[str, Any]) -> str:
    """sha256 of the hyperparameters (model, training and input config, norm, classes)."""
    text = json.dumps(dict(hparams), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_archive(path: str | Path) -> None:
    """``path`` is whole and of the kind ``torch.save`` writes: a zip archive (a truncated one
    has lost the directory at its end)."""
    with require_file(path, "checkpoint").open("rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise HepsnakeError(
            str(path), "not a checkpoint: another kind of file (torch.save writes a zip archive)"
        )
    if not zipfile.is_zipfile(path):
        raise HepsnakeError(
            str(path), f"truncated checkpoint (the end of its zip archive is missing): {RERUN}"
        )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (tensors and plain types only), on the CPU."""
    check_archive(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = f"a pickled '{found.group(1)}'" if found else "a pickled object"
        raise HepsnakeError(
            str(path),
            f"refused: the checkpoint holds {what}; only tensors and plain types are loaded "
            "(loading it could run code)",
        ) from error
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise HepsnakeError(str(path), f"cannot read checkpoint: {error}") from error
    if not isinstance(content, dict):
        raise HepsnakeError(str(path), "not a checkpoint (not a dict)")
    return content


class TrainedTagger(nn.Module):
    """A tagger rebuilt from its hyperparameters: ``model``, ``spec``, ``hparams`` (plain) and
    ``trained`` (typed)."""

    def __init__(self, hparams: Mapping[str, Any], path: str | Path = "checkpoint") -> None:
        super().__init__()
        self.hparams = Hyperparameters(hparams)
        try:
            self.trained = build(Trained, hparams)
        except TypeError as error:
            raise HepsnakeError(
                str(path), f"hyper_parameters of another hepsnake version ({error}): retrain it"
            ) from None
        self.spec, self.model = build_tagger(self.trained)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch)


def load_module(path: str | Path) -> TrainedTagger:
    """The trained tagger of checkpoint ``path`` (plain or adversarial run), CPU, eval mode."""
    content = read_checkpoint(path)
    hparams, state = content.get("hyper_parameters"), content.get("state_dict")
    if not isinstance(hparams, dict) or not isinstance(state, dict):
        raise HepsnakeError(
            str(path), "not a hepsnake checkpoint (no state_dict / hyper_parameters)"
        )
    missing = [k for k in NEEDED if k not in hparams]
    if missing:
        raise HepsnakeError(str(path), f"hyper_parameters lack '{missing[0]}'")
    trained = TrainedTagger(hparams, path)
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    try:
        trained.model.load_state_dict(weights)
    except RuntimeError as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise HepsnakeError(str(path), f"weights do not fit the model config: {first}") from error
    return trained.eval()
