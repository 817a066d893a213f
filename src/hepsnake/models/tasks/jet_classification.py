"""Jet classification: the headline task; one probability per class per jet.

Its output is the tagger's ``logits``; its fields are puma's ``{model}_p{class}`` columns,
written (with the parameter scans) by the predict stage and scored by the evaluate stage.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hepsnake.models.tasks.base import Context, Task, Trunk
from hepsnake.names import prob_column

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

OUTPUT = "logits"  # the tagger's output key of the jet classification


class JetClassification(Task):
    """Weighted cross-entropy over the configured classes (class and per-jet weights); its
    label is the batch's ``label`` (the ``flavour_label`` field every loader reads)."""

    level = "jet"

    def __init__(
        self,
        context: Context,
        name: str = "jet_classification",
        weight: float = 1.0,
        hidden: Sequence[int] | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__(context, name, weight)
        self.hidden, self.dropout = hidden, dropout

    @property
    def output_key(self) -> str:
        return OUTPUT

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import JetHead

        hidden = self.hidden if self.hidden is not None else trunk.head_hidden
        dropout = self.dropout if self.dropout is not None else trunk.head_dropout
        return JetHead(trunk.jet_width, hidden, len(self.context.class_names), dropout)

    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        import torch
        import torch.nn.functional as F

        from hepsnake.models.tasks.heads import weighted_mean

        logits = output.float()
        n = len(self.context.class_names)
        weights = torch.tensor(
            self.context.class_weights or [1.0] * n, dtype=logits.dtype, device=logits.device
        )
        ce = F.cross_entropy(logits, batch["label"], weight=weights, reduction="none")
        correct = (logits.argmax(-1) == batch["label"]).float()
        return {
            "loss": weighted_mean(ce, batch["weight"]),
            "acc": weighted_mean(correct, batch["weight"]),
        }

    def predict_names(self, model: str) -> list[str]:
        return [prob_column(model, c) for c in self.context.class_names]

    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        probs = output.float().softmax(-1)
        return {n: probs[:, i] for i, n in enumerate(self.predict_names(model))}

    def evaluate(
        self, table: "np.ndarray", model: str, jets: "np.ndarray | None" = None
    ) -> dict[str, Any]:
        """Scored by the evaluate stage itself (ROC, rejections, K-S): nothing extra here."""
        return {}
