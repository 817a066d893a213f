"""The Lightning module of a tagger: weighted losses, metrics, optimiser and schedule."""

from typing import Any

import lightning as L
import torch

from hepsnake.models.checkpoint import HASH_KEY, config_sha256
from hepsnake.models.tagger import build_tagger


class TaggerModule(L.LightningModule):
    """The tagger's tasks trained together: loss = Σ task weight × task loss (per-jet weights).

    Everything needed to rebuild the model (config, inputs, norm dict) is saved as plain
    hyperparameters, with their hash (resume checks it), so
    :func:`hepsnake.models.checkpoint.load_trained` rebuilds the model without Lightning.
    """

    def __init__(
        self,
        model_cfg: dict[str, Any],
        training_cfg: dict[str, Any],
        inputs: dict[str, Any],
        norm: dict[str, Any],
        class_names: list[str],
        class_weights: list[float] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec, self.model = build_tagger(self.hparams)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[HASH_KEY] = config_sha256(self.hparams)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` (the weighted sum), the jet classification's ``ce`` and ``acc``, and per
        other task ``{task}_loss`` (and its metrics)."""
        out = self(batch)
        result: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for task in self.model.tasks:
            parts = task.loss(out[task.output_key], batch)
            total = total + task.weight * parts["loss"]
            if task.output_key == "logits":
                result["ce"], result["acc"] = parts["loss"], parts["acc"]
            else:
                result |= {f"{task.name}_{k}": v for k, v in parts.items()}
        result["loss"] = total
        return result

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        result = self.losses(batch)
        size = len(batch["weight"])
        for key, value in result.items():
            self.log(
                f"train_{key}", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=True
            )
        return result["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        result = self.losses(batch)
        size = len(batch["weight"])
        for key, value in result.items():
            self.log(f"val_{key}", value, on_epoch=True, batch_size=size, sync_dist=True)

    def on_train_epoch_start(self) -> None:
        # reseeding per epoch makes a resumed run repeat the uninterrupted one exactly
        torch.manual_seed(self.hparams.training_cfg["seed"] * 1000 + self.current_epoch)

    def configure_optimizers(self) -> Any:
        cfg = self.hparams.training_cfg
        optimiser = torch.optim.AdamW(
            self.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
        )
        schedule = cfg["schedule"]
        if schedule == "none":
            return optimiser
        if schedule == "plateau":
            settings = cfg["plateau"]
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimiser, factor=settings["factor"], patience=settings["patience"]
            )
            return {
                "optimizer": optimiser,
                "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"},
            }
        steps = self.trainer.estimated_stepping_batches
        if schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(
                optimiser, max_lr=cfg["lr"], total_steps=steps
            )
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
