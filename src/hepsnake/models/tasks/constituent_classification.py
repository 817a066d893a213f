"""Constituent classification: one label per constituent of a collection (GN2's track
origin, StationHitClassifier's hit label), binary or multi-class, masked over padding.

Labels are class indices (an int field of the collection; negative values are skipped).
Predictions are one (N, max) field per class, ``{model}_{name}_p{class}``, in the
predictions file's dataset of the collection (Salt's per-track output layout).
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.models.tasks.base import Context, Task, Trunk
from hepsnake.names import prob_suffix, task_field, valid_field

if TYPE_CHECKING:
    import torch
    from torch import nn


class ConstituentClassification(Task):
    """Weighted cross-entropy over the real, labelled constituents (jet weight each)."""

    level = "constituent"

    def __init__(
        self,
        context: Context,
        name: str,
        collection: str,
        label: str,
        classes: Sequence[str],
        weight: float = 1.0,
        signal: str | None = None,
        bayes: str | None = None,
        hidden: Sequence[int] | None = None,
    ) -> None:
        super().__init__(context, name, weight)
        self.collection, self.label, self.classes = collection, label, list(classes)
        self.signal = signal or self.classes[-1]
        self.bayes, self.hidden = bayes, hidden

    @property
    def dataset(self) -> str:
        return self.collection

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import ConstituentHead

        hidden = self.hidden if self.hidden is not None else trunk.head.get("hidden", [trunk.dim])
        return ConstituentHead(
            self.collection, trunk.dim, trunk.jet_width, hidden, len(self.classes)
        )

    def labels(self) -> list[tuple[str, str]]:
        return [(self.collection, self.label)]

    def truth(self) -> list[str]:
        return [self.label, *([self.bayes] if self.bayes else [])]

    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        import torch.nn.functional as F

        from hepsnake.models.tasks.base import label_key
        from hepsnake.models.tasks.heads import weighted_mean

        label = batch[label_key(self.collection, self.label)].long()
        keep = batch[f"{self.collection}_mask"] & (label >= 0)
        ce = F.cross_entropy(output.float().transpose(1, 2), label.clamp_min(0), reduction="none")
        weights = batch["weight"].unsqueeze(1) * keep
        correct = (output.argmax(-1) == label).float()
        return {"loss": weighted_mean(ce, weights), "acc": weighted_mean(correct, weights)}

    def predict_names(self, model: str) -> list[str]:
        return [task_field(model, self.name, prob_suffix(c)) for c in self.classes]

    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        probs = output.float().softmax(-1)
        return {n: probs[..., i] for i, n in enumerate(self.predict_names(model))}

    def evaluate(self, table: np.ndarray, model: str) -> dict[str, Any]:
        """AUC of :attr:`signal` against the other classes over real labelled constituents
        (and the Bayes-optimal AUC of the ``bayes`` truth posterior), accuracy, confusion."""
        from sklearn.metrics import confusion_matrix, roc_auc_score

        label = table[self.label].astype(np.int64)
        keep = table[valid_field()] & (label >= 0) & (label < len(self.classes))
        truth = label[keep]
        probs = np.stack([table[n][keep] for n in self.predict_names(model)], -1)
        is_signal = truth == self.classes.index(self.signal)
        out: dict[str, Any] = {"n": int(keep.sum()), "signal": self.signal}
        if 0 < is_signal.sum() < len(truth):
            out["auc"] = float(roc_auc_score(is_signal, probs[:, self.classes.index(self.signal)]))
            if self.bayes:
                out["bayes_auc"] = float(roc_auc_score(is_signal, table[self.bayes][keep]))
        out["accuracy"] = float(np.mean(probs.argmax(-1) == truth)) if len(truth) else None
        out["confusion"] = confusion_matrix(
            truth, probs.argmax(-1), labels=range(len(self.classes))
        ).tolist()
        return out
