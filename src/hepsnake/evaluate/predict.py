"""The ``predict`` stage: class probabilities of the test jets in a puma-readable ``jets`` table."""

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from hepsnake.data.loader import H5Batches
from hepsnake.io.atomic import atomic_path
from hepsnake.io.h5 import set_attrs
from hepsnake.training.module import TaggerModule


def load_module(checkpoint: str | Path) -> TaggerModule:
    """A trained module on the CPU, in eval mode."""
    module = TaggerModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    return module.eval()


@torch.no_grad()
def probabilities(module: TaggerModule, path: str, batch_size: int = 5000) -> np.ndarray:
    """Softmax outputs (N, classes) for every jet of ``path``, in file order."""
    batches = H5Batches(path, module.spec, batch_size)
    outs = [module(batch)["logits"].float().softmax(-1).numpy() for batch in batches]
    return np.concatenate(outs) if outs else np.zeros((0, len(module.hparams.class_names)))


def with_scores(
    jets: np.ndarray, probs: np.ndarray, model: str, class_names: list[str]
) -> np.ndarray:
    """``jets`` plus one float32 column ``{model}_p{class}`` per class."""
    columns = [f"{model}_p{c}" for c in class_names]
    dtype = np.dtype(jets.dtype.descr + [(c, np.float32) for c in columns])
    out = np.empty(len(jets), dtype=dtype)
    for name in jets.dtype.names:
        out[name] = jets[name]
    for i, col in enumerate(columns):
        out[col] = probs[:, i]
    return out


def predict(
    model_name: str, checkpoint: str, test: str, output: str, control: str | None = None
) -> dict[str, Any]:
    """Write ``output`` with dataset ``jets`` (test split) and ``control_jets`` when given."""
    module = load_module(checkpoint)
    class_names = list(module.hparams.class_names)
    tables = {"jets": test} | ({"control_jets": control} if control else {})
    counts = {}
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        for name, path in tables.items():
            with h5py.File(path, "r") as h5:
                jets = h5["jets"][:]
            table = with_scores(jets, probabilities(module, path), model_name, class_names)
            out.create_dataset(name, data=table, compression="lzf", chunks=True)
            out[name].attrs["class_names"] = class_names
            counts[name] = len(table)
        set_attrs(out, {"model": model_name, "checkpoint": str(checkpoint)})
    return counts
