"""The Lightning module of a tagger: weighted losses, metrics, optimiser and schedule."""

from typing import Any

import lightning as L
import torch

from hepsnake.config.contracts import Trained
from hepsnake.config.typed import to_data
from hepsnake.models.checkpoint import HASH_KEY, config_sha256
from hepsnake.models.tagger import build_tagger


class TaggerModule(L.LightningModule):
    """The tagger's tasks trained together: loss = Σ task weight × task loss (per-jet weights).

    Everything needed to rebuild the model (:class:`~hepsnake.config.contracts.Trained`:
    config, inputs, norm dict) is saved as plain hyperparameters, with their hash (resume
    checks it), so :func:`hepsnake.models.checkpoint.load_module` rebuilds the model without
    Lightning.
    """

    def __init__(self, trained: Trained) -> None:
        super().__init__()
        self.save_hyperparameters(to_data(trained))
        self.trained = trained
        self.spec, self.model = build_tagger(trained)
        self.epoch_sums: dict[str, dict[str, torch.Tensor]] = {}
        self.epoch_jets: dict[str, int] = {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[HASH_KEY] = config_sha256(self.hparams)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`task_losses` of the model's outputs on ``batch``."""
        return self.task_losses(self(batch), batch)

    def task_losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """``loss`` (the weighted sum) and each task's loss parts under the names it logs them
        by (:meth:`~hepsnake.models.tasks.base.Task.logged`), from the model's outputs ``out``."""
        result: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for task in self.model.tasks:
            parts = task.loss(out[task.output_key], batch)
            total = total + task.weight * parts["loss"]
            result |= task.logged(parts)
        result["loss"] = total
        return result

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        result = self.losses(batch)
        self.accumulate("train", result, len(batch["weight"]), batch_idx)
        return result["loss"]

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor]:
        """Log the validation losses; return the class probabilities (for ``val_auc``)."""
        out = self(batch)
        self.accumulate("val", self.task_losses(out, batch), len(batch["weight"]), batch_idx)
        return {"probs": self.model.classification.probabilities(out).detach()}

    def accumulate(
        self, prefix: str, result: dict[str, torch.Tensor], size: int, batch_idx: int
    ) -> None:
        """Sum the batch-size-weighted metrics and log their epoch means as
        ``{prefix}_{key}`` once, at the epoch's last batch: what ``self.log(...,
        on_epoch=True)`` per step gives, without its per-call cost (a sizeable part of a step
        of a small model)."""
        n_batches = (
            self.trainer.num_training_batches
            if prefix == "train"
            else sum(self.trainer.num_val_batches)
        )
        if batch_idx == 0:
            self.epoch_sums[prefix], self.epoch_jets[prefix] = {}, 0
        sums = self.epoch_sums[prefix]
        for key, value in result.items():
            weighted = value.detach() * size
            sums[key] = sums[key] + weighted if batch_idx else weighted
        self.epoch_jets[prefix] += size
        if batch_idx == n_batches - 1:
            jets = self.epoch_jets[prefix]
            for key, value in sums.items():
                self.log(
                    f"{prefix}_{key}",
                    value / jets,
                    on_step=False,
                    on_epoch=True,
                    batch_size=jets,
                    sync_dist=True,
                )

    def on_train_epoch_start(self) -> None:
        # reseeding per epoch makes a resumed run repeat the uninterrupted one exactly
        torch.manual_seed(self.trained.training_cfg.seed * 1000 + self.current_epoch)

    def configure_optimizers(self) -> Any:
        cfg = self.trained.training_cfg
        optimiser = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        schedule = cfg.schedule
        if schedule == "none":
            return optimiser
        if schedule == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimiser, factor=cfg.plateau.factor, patience=cfg.plateau.patience
            )
            return {
                "optimizer": optimiser,
                "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"},
            }
        steps = self.trainer.estimated_stepping_batches
        if schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=steps)
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
