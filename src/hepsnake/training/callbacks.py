"""Callbacks: a resume checkpoint written atomically every epoch, and the metrics.json summary."""

import io
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path, write_json
from hepsnake.pause import pause_point


@contextmanager
def checkpoint_path(trainer: L.Trainer, path: str | os.PathLike) -> Iterator[str]:
    """Where to save checkpoint ``path``: on rank 0 a temporary renamed onto it once complete
    (:func:`~hepsnake.io.atomic.atomic_path`: a failed or killed save leaves no truncated file;
    a failed write is one error naming ``path``); other ranks write nothing and get ``path``."""
    if not trainer.is_global_zero:
        yield str(path)
        return
    try:
        with atomic_path(path) as tmp:
            yield str(tmp)
    except RuntimeError as exc:  # torch.save: "PytorchStreamWriter failed writing file ..."
        if "writ" not in str(exc).lower():
            raise
        cause = str(exc).strip().splitlines()[0]
        raise HepsnakeError(str(path), f"cannot write checkpoint: {cause}") from None


class InPlaceCheckpointIO(TorchCheckpointIO):
    """Saves a checkpoint straight to the path it is given: the callbacks give a temporary
    beside the output (:func:`checkpoint_path`), so Lightning's own atomic save, which stages
    a copy in the system temp folder, would only add a second copy and, on a full disk, an
    error naming that /tmp file instead of the model folder."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        buffer = io.BytesIO()  # serialised first: a failed write is an OSError with its errno
        torch.save(checkpoint, buffer)
        Path(path).write_bytes(buffer.getbuffer())


class AtomicModelCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, saving through :func:`checkpoint_path`."""

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        with checkpoint_path(trainer, filepath) as tmp:
            super()._save_checkpoint(trainer, tmp)
        self._last_checkpoint_saved = filepath


class ResumeCheckpoint(L.Callback):
    """Save the full training state after every epoch to ``path`` (:func:`checkpoint_path`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        with checkpoint_path(trainer, self.path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)  # the full state: resume needs it
        pause_point("train.epoch_end")  # tests: the resume checkpoint of this epoch is saved


class MetricsSummary(L.Callback):
    """Write ``metrics.json`` (per-epoch losses and accuracies, best epoch, timing, and the
    ``warnings`` other callbacks append to ``warnings``) every epoch.

    Its state travels in checkpoints, so a resumed run keeps the epochs before the kill.
    ``echo`` also prints each epoch's record as one JSON line on stdout (for HPO tools).
    """

    def __init__(
        self,
        path: Path,
        monitor: str = "val_loss",
        echo: bool = False,
        warnings: list[dict[str, Any]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.echo = echo
        self.warnings = [] if warnings is None else warnings
        self.epochs: list[dict[str, Any]] = []
        self.max_epochs: int | None = None
        self.started = 0.0
        self.jets = 0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        self.jets = 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.jets += len(batch["label"])

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.max_epochs = trainer.max_epochs
        seconds = time.perf_counter() - self.started
        record: dict[str, Any] = {"epoch": trainer.current_epoch, "seconds": round(seconds, 3)}
        record["jets_per_s"] = (
            round(self.jets * trainer.world_size / seconds, 1) if seconds else None
        )
        for key, value in sorted(trainer.callback_metrics.items()):
            record[key] = float(value)
        self.epochs.append(record)
        if trainer.is_global_zero:
            write_json(self.path, self.summary())
            if self.echo:
                print(json.dumps(record), file=sys.stdout, flush=True)

    def summary(self) -> dict[str, Any]:
        scored = [e for e in self.epochs if self.monitor in e]
        best = min(scored, key=lambda e: e[self.monitor]) if scored else None
        gated = [e for e in self.epochs if e.get("val_ks_pass")]
        return {
            "monitor": self.monitor,
            "gate_fallback": bool(self.epochs and "val_ks_pass" in self.epochs[0] and not gated),
            "best_epoch": best["epoch"] if best else None,
            "best": best,
            # fewer epochs than this: early stopping (or another callback) ended the run
            "max_epochs": self.max_epochs,
            "epochs": self.epochs,
            "train_seconds": round(sum(e["seconds"] for e in self.epochs), 3),
            "warnings": self.warnings,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "warnings": self.warnings}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = list(state_dict["epochs"])
        self.warnings[:] = state_dict.get("warnings", [])
