"""Stop training at the first non-finite loss, gradient or validation output, with one line
that names the model, epoch and batch and what in that batch is the likely cause."""

from typing import Any

import lightning as L
import torch

from hepsnake.data.loader import Batch, InputSpec
from hepsnake.errors import HepsnakeError

HUGE_WEIGHT = 100.0  # normalised training weights average 1 in magnitude: far above is suspect


class NonFiniteError(HepsnakeError):
    """Training met a non-finite loss, gradient or output (the run's outputs are removed)."""


class FiniteLoss(L.Callback):
    """Check the loss and the gradients of every backward pass, and every validation batch's
    outputs; raise :class:`NonFiniteError` at the first non-finite value. The training checks
    stay on the device and are read every :data:`DEVICE_EVERY` passes on an accelerator (a
    read waits for the device), every :data:`CPU_EVERY` on the CPU, and before each
    validation and at the end of each epoch: the failing pass is found among the pending
    ones, its batch kept for the diagnosis. With ``16-mixed`` precision the gradient scaler
    handles infinite gradients itself: only the loss is checked."""

    DEVICE_EVERY = 16
    CPU_EVERY = 1

    def __init__(self, model: str, spec: InputSpec) -> None:
        self.model, self.spec = model, spec
        self.batch: Batch = {}
        self.batch_idx = 0
        self.loss = torch.zeros(())
        # per pass not yet read: (batch index, batch, loss, [loss finite, gradients finite])
        self.pending: list[tuple[int, Batch, torch.Tensor, torch.Tensor]] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Batch, batch_idx: int
    ) -> None:
        self.batch, self.batch_idx = batch, batch_idx

    def on_before_backward(
        self, trainer: L.Trainer, module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        self.loss = loss.detach()

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        grads = [p.grad.float().sum() for p in module.parameters() if p.grad is not None]
        if trainer.precision == "16-mixed" or not grads:
            grads = [torch.zeros((), device=self.loss.device)]
        finite = torch.stack(
            [torch.isfinite(self.loss).all(), torch.isfinite(torch.stack(grads)).all()]
        )
        self.pending.append((self.batch_idx, self.batch, self.loss, finite))
        every = self.CPU_EVERY if self.loss.device.type == "cpu" else self.DEVICE_EVERY
        if len(self.pending) >= every:
            self.check(trainer, module)

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer, module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.check(trainer, module)

    def check(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Read the pending checks (one wait for the device); fail at the first bad pass."""
        if not self.pending:
            return
        finite = torch.stack([f for *_, f in self.pending]).cpu()
        pending, self.pending = self.pending, []
        if bool(finite.all()):
            return
        first = int((~finite.all(dim=1)).nonzero()[0])
        self.batch_idx, self.batch, loss, _ = pending[first]
        if bool(finite[first, 0]):
            what = "non-finite gradient"
            if first == len(pending) - 1:  # the gradients are still those of that pass
                what += " of " + next(
                    name
                    for name, p in module.named_parameters()
                    if p.grad is not None and not torch.isfinite(p.grad).all()
                )
        else:
            what = f"non-finite loss ({loss.float().sum().item():g})"
        self.fail(trainer, what, "batch")

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        probs = outputs.get("probs") if isinstance(outputs, dict) else None
        if probs is not None and not torch.isfinite(probs).all():
            self.batch, self.batch_idx = batch, batch_idx
            self.fail(trainer, "non-finite outputs", "validation batch")

    def fail(self, trainer: L.Trainer, what: str, kind: str) -> None:
        """Raise the one-line error about ``what`` in the current batch."""
        optimiser = trainer.optimizers[0] if trainer.optimizers else None
        lr = optimiser.param_groups[0]["lr"] if optimiser is not None else float("nan")
        raise NonFiniteError(
            f"model '{self.model}'",
            f"{what} at epoch {trainer.current_epoch}, {kind} {self.batch_idx}: "
            + diagnosis(self.batch, self.spec, lr),
        )


def diagnosis(batch: Batch, spec: InputSpec, lr: float) -> str:
    """The likely cause found in ``batch``: its non-finite inputs by variable (real
    constituents only), else non-finite or huge weights, else the learning rate ``lr``;
    then the largest |weight| and ``lr``."""
    bad = [f"{name} ({n} jet{'s' * (n > 1)})" for name, n in non_finite_inputs(batch, spec)]
    weights = batch["weight"].double()
    finite = torch.isfinite(weights)
    largest = float(weights[finite].abs().max()) if finite.any() else float("nan")
    if bad:
        cause = f"non-finite inputs {', '.join(bad)}"
    elif not finite.all():
        cause = f"{int((~finite).sum())} non-finite weights"
    elif largest > HUGE_WEIGHT:
        cause = "huge weights (check prepare.negative_weights and prepare.weights)"
    else:
        cause = f"inputs and weights finite: too high a learning rate ({lr:.3g})?"
    total = float(weights[finite].sum())
    return (
        f"likely cause: {cause}; largest |weight| {largest:.3g} (batch Σw {total:.3g}),"
        f" learning rate {lr:.3g}"
    )


def non_finite_inputs(batch: Batch, spec: InputSpec) -> list[tuple[str, int]]:
    """(``collection.variable``, jets with a non-finite value of it) for every input
    variable (and parameter) with any, constituent padding left out."""
    out = []
    for coll, names in spec.variables.items():
        values = batch[coll]
        bad = ~torch.isfinite(values)
        if values.dim() == 3:  # (jets, constituents, variables): real constituents only
            bad = (bad & batch[f"{coll}_mask"].unsqueeze(-1)).any(dim=1)
        counts = bad.sum(dim=0).tolist()
        out += [(f"{coll}.{name}", n) for name, n in zip(names, counts, strict=True) if n]
    if spec.parameters:
        counts = (~torch.isfinite(batch["params"])).sum(dim=0).tolist()
        out += [(name, n) for name, n in zip(spec.parameters, counts, strict=True) if n]
    return out
