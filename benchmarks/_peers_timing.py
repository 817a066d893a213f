"""A Lightning callback that times training epochs the same way in hepsnake and in Salt.

Imported by both sides (hepsnake's venv and Salt's, which each have Lightning): Salt names it
in its config as ``_peers_timing.EpochTimer`` with this directory on ``PYTHONPATH``; hepsnake
passes it to :func:`hepsnake.training.run.train` as an extra callback. Per epoch it records
the training part only (epoch start to the end of its last training batch: data loading,
forward, backward and optimiser steps, no validation or checkpoint writing) as wall and CPU
seconds, and the jets seen, one JSON line per epoch appended to ``path``. CPU counts this
process and its live children (Salt's DataLoader workers; hepsnake reads in a thread).
"""

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import psutil
import torch


def batch_size(batch: Any) -> int:
    """The leading size of the first tensor found in ``batch`` (nested dicts, lists, tuples):
    hepsnake's batch is a dict of tensors, Salt's a tuple of dicts."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = batch.values() if isinstance(batch, dict) else batch
    for value in values:
        if isinstance(value, torch.Tensor | dict | list | tuple):
            found = batch_size(value)
            if found:
                return found
    return 0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live child processes."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


class EpochTimer(L.Callback):
    """Append ``{"epoch", "jets", "wall_s", "cpu_s", "threads"}`` per training epoch to
    ``path``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.jets = 0
        self.start = (0.0, 0.0)
        self.last = (0.0, 0.0)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.jets = 0
        self.start = self.last = (time.perf_counter(), cpu_seconds())

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.jets += batch_size(batch)
        self.last = (time.perf_counter(), cpu_seconds())

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.jets:
            return
        record = {
            "epoch": trainer.current_epoch,
            "jets": self.jets,
            "wall_s": self.last[0] - self.start[0],
            "cpu_s": self.last[1] - self.start[1],
            "threads": torch.get_num_threads(),
        }
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")
