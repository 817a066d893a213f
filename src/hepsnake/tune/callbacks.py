"""Lightning callbacks of tuning: the validation AUC per epoch, pruning on the objective."""

from typing import Any

import lightning as L
import numpy as np
import torch

from hepsnake.roc import roc


class ValAUC(L.Callback):
    """Log ``val_auc`` each epoch: the weighted one-vs-rest AUC (:func:`hepsnake.roc.roc`) of
    each class present in the validation split, averaged (a per-epoch figure ``hepsnake
    compare`` and studies rank by). The first note a class's ROC gets (signed weights) is
    appended to ``warnings`` as a ``signed_roc`` warning (once per class, resumed runs too).
    """

    def __init__(self, warnings: list[dict[str, Any]] | None = None) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.warnings = [] if warnings is None else warnings

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.parts = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: dict[str, torch.Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        probs = outputs["probs"]  # TaggerModule.validation_step's: no second forward pass
        self.parts.append(
            (probs.cpu().numpy(), batch["label"].cpu().numpy(), batch["weight"].cpu().numpy())
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.parts:
            return
        probs, labels, weights = (np.concatenate(p) for p in zip(*self.parts, strict=True))
        present = np.unique(labels).tolist()
        if len(present) < 2:
            return
        aucs = []
        for c in present:
            is_c = labels == c
            curve = roc(probs[is_c, c], probs[~is_c, c], weights[is_c], weights[~is_c])
            aucs.append(curve.auc)
            subject = f"val_auc of class '{module.hparams.class_names[c]}'"
            if curve.note and not any(w["message"].startswith(subject) for w in self.warnings):
                self.warnings.append(
                    {
                        "code": "signed_roc",
                        "message": f"{subject} (epoch {trainer.current_epoch}): {curve.note}",
                        "advice": "the validation AUC is approximate with negative training"
                        " weights (prepare.negative_weights: keep); the loss is not affected",
                    }
                )
        module.log("val_auc", float(np.mean(aucs)), sync_dist=True)


class Pruning(L.Callback):
    """Report ``metric`` to an Optuna trial after each validation; stop the run (after this
    epoch, checkpoints and metrics written as usual) when the pruner says so."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None or not trainer.is_global_zero:
            return
        self.trial.report(float(value), trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True
