"""The Lightning module of a tagger: weighted losses, metrics, optimiser and schedule."""

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from hepsnake.models.checkpoint import HASH_KEY, config_sha256
from hepsnake.models.tagger import build_tagger


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ w·v / Σ w (0 when the weights sum to 0)."""
    total = weights.sum()
    return (values * weights).sum() / total.clamp_min(torch.finfo(values.dtype).tiny)


class TaggerModule(L.LightningModule):
    """Classification with class weights and per-jet weights, plus an optional aux regression.

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
        weights = torch.tensor(class_weights or [1.0] * len(class_names), dtype=torch.float32)
        self.register_buffer("class_weights", weights)
        self.aux_cfg = model_cfg.get("aux")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[HASH_KEY] = config_sha256(self.hparams)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self(batch)
        logits = out["logits"].float()
        ce = F.cross_entropy(logits, batch["label"], weight=self.class_weights, reduction="none")
        loss = weighted_mean(ce, batch["weight"])
        result = {"loss": loss, "ce": loss}
        correct = (logits.argmax(-1) == batch["label"]).float()
        result["acc"] = weighted_mean(correct, batch["weight"])
        if self.aux_cfg:
            target = batch[self.aux_cfg["target"]].float()
            finite = torch.isfinite(target)
            scaled = (torch.nan_to_num(target) - self.aux_cfg["mean"]) / self.aux_cfg["std"]
            mse = (out["aux"].float() - scaled) ** 2
            result["aux"] = weighted_mean(mse, batch["weight"] * finite)
            result["loss"] = loss + self.aux_cfg.get("weight", 1.0) * result["aux"]
        return result

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        result = self.losses(batch)
        size = len(batch["label"])
        for key, value in result.items():
            self.log(
                f"train_{key}", value, on_step=False, on_epoch=True, batch_size=size, sync_dist=True
            )
        return result["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        result = self.losses(batch)
        size = len(batch["label"])
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
