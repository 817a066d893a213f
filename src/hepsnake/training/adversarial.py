"""Data/MC adversarial training (CalRatio 2019 style): alternate discriminator and main steps.

The discriminator sees the main network's class probabilities on control-region jets and
learns data vs MC; the main step minimises ``L_main − λ·L_adv`` with the discriminator frozen.
"""

import itertools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hepsnake.config.contracts import Trained
from hepsnake.errors import HepsnakeError
from hepsnake.models.layers import Dense
from hepsnake.models.tasks.heads import weighted_mean
from hepsnake.stats import weighted_ks
from hepsnake.training.module import TaggerModule


class AdversarialModule(TaggerModule):
    """A :class:`TaggerModule` with a data/MC discriminator and manual optimisation."""

    def __init__(self, trained: Trained) -> None:
        super().__init__(trained)
        if trained.adversarial is None:
            raise HepsnakeError("model: adversarial", "not set: no adversarial training")
        self.adv = trained.adversarial
        n_classes = len(trained.class_names)
        self.discriminator = Dense(n_classes, list(self.adv.hidden), 1)
        self.automatic_optimization = False

    def control_probs(self, control: dict[str, torch.Tensor]) -> torch.Tensor:
        """The main network's class probabilities on control-region jets."""
        return self.model.classification.probabilities(self(control))

    def adversary_loss(self, control: dict[str, torch.Tensor], probs: torch.Tensor) -> torch.Tensor:
        """Weighted BCE of the discriminator on the main network's control-jet ``probs``."""
        logit = self.discriminator(probs).squeeze(-1)
        bce = F.binary_cross_entropy_with_logits(
            logit, control["is_data"].float(), reduction="none"
        )
        return weighted_mean(bce, control["weight"])

    def discriminator_step(
        self, control: dict[str, torch.Tensor], probs: torch.Tensor
    ) -> torch.Tensor:
        """One discriminator update on detached ``probs``; the main network is not touched."""
        _, disc_opt = self.optimizers()
        loss = self.adversary_loss(control, probs.detach())
        disc_opt.zero_grad()
        self.manual_backward(loss)
        disc_opt.step()
        return loss.detach()

    def main_step(
        self, batch: dict[str, torch.Tensor], control: dict[str, torch.Tensor], probs: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One update of the main network on ``L_main − λ·L_adv``; the discriminator is frozen."""
        main_opt, _ = self.optimizers()
        result = self.losses(batch)
        self.discriminator.requires_grad_(False)
        adv = self.adversary_loss(control, probs)
        total = result["loss"] - self.adv.weight * adv
        main_opt.zero_grad()
        self.manual_backward(total)
        self.discriminator.requires_grad_(True)
        clip = self.trained.training_cfg.gradient_clip
        if clip:
            self.clip_gradients(main_opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        main_opt.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None and not isinstance(
            scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
        ):
            scheduler.step()
        return {**result, "adv": adv.detach(), "total": total.detach()}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        control = self.trainer.datamodule.control_batch()
        # the discriminator steps leave the main network as it was: one forward of the control
        # jets (kept in the graph for the main step) serves every step of this batch
        probs = self.control_probs(control)
        disc = torch.stack(
            [self.discriminator_step(control, probs) for _ in range(self.adv.k_steps)]
        )
        result = self.main_step(batch, control, probs)
        result["disc"] = disc.mean()
        self.accumulate("train", result, len(batch["label"]), batch_idx)

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(self.trainer.callback_metrics["val_loss"])

    def configure_optimizers(self) -> Any:
        main = super().configure_optimizers()
        disc_opt = torch.optim.AdamW(self.discriminator.parameters(), lr=self.adv.lr)
        if isinstance(main, dict):
            return [main["optimizer"], disc_opt], [main["lr_scheduler"]]
        return [main, disc_opt]

    @torch.no_grad()
    def on_validation_epoch_end(self) -> None:
        """Weighted data/MC K-S of every class output on the control validation split."""
        outs, is_data, weights, pt = [], [], [], []
        losses = []
        for control in self.trainer.datamodule.control["val"]:
            control = {k: v.to(self.device) for k, v in control.items()}
            probs = self.control_probs(control)
            outs.append(probs.cpu().numpy())
            losses.append(float(self.adversary_loss(control, probs)))
            is_data.append(control["is_data"].cpu().numpy())
            weights.append(control["weight"].cpu().numpy())
            pt.append(control["pt"].cpu().numpy())
        probs, data = np.concatenate(outs), np.concatenate(is_data).astype(bool)
        w, pt_all = np.concatenate(weights), np.concatenate(pt)
        metrics = {"val_adv": float(np.mean(losses))}
        for i, name in enumerate(self.trained.class_names):
            d, _ = weighted_ks(probs[data, i], probs[~data, i], w[data], w[~data])
            metrics[f"val_ks_p{name}"] = d
            edges = self.adv.pt_bins
            for lo, hi in itertools.pairwise(edges):
                sel = (pt_all >= lo) & (pt_all < hi)
                d_bin, _ = weighted_ks(
                    probs[sel & data, i], probs[sel & ~data, i], w[sel & data], w[sel & ~data]
                )
                metrics[f"val_ks_p{name}_pt{lo:g}_{hi:g}"] = d_bin
        gate = metrics[f"val_ks_p{self.adv.ks_class}"]
        val_loss = float(self.trainer.callback_metrics["val_loss"])
        passed = gate < self.adv.ks_threshold
        metrics["val_ks_pass"] = float(passed)
        # epochs failing the gate rank after every passing one, so "best" falls back to the
        # lowest validation loss when none passes
        metrics["val_loss_gated"] = val_loss if passed else val_loss + 1.0e3
        for key, value in metrics.items():
            self.log(key, value, sync_dist=True)
