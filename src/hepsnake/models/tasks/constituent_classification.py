"""Constituent classification: one label per constituent of a collection (GN2's track
origin, StationHitClassifier's hit label), binary or multi-class, masked over padding.

Labels are class indices (an int field of the collection; negative values are skipped).
Predictions are one (N, max) field per class, ``{model}_{name}_p{class}``, in the
predictions file's dataset of the collection (Salt's per-track output layout).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.models.tasks.base import Context, Task, Trunk, plot_name
from hepsnake.names import prob_suffix, task_field, valid_field
from hepsnake.roc import auc

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
        bayes: Mapping[str, str | float] | None = None,
        hidden: Sequence[int] | None = None,
        mixture: int = 1,
    ) -> None:
        super().__init__(context, name, weight)
        self.collection, self.label, self.classes = collection, label, list(classes)
        self.signal = signal or self.classes[-1]
        self.bayes, self.hidden, self.mixture = dict(bayes or {}), hidden, mixture

    @property
    def dataset(self) -> str:
        return self.collection

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import ConstituentHead

        hidden = self.hidden if self.hidden is not None else trunk.head_hidden
        return ConstituentHead(
            self.collection, trunk.dim, trunk.jet_width, hidden, len(self.classes), self.mixture
        )

    def labels(self) -> list[tuple[str, str]]:
        return [(self.collection, self.label)]

    def truth(self) -> list[str]:
        return [self.label, *(v for v in self.bayes.values() if isinstance(v, str))]

    def bayes_score(self, table: np.ndarray, jets: np.ndarray | None) -> np.ndarray | None:
        """P(:attr:`signal` | everything in the jet), (N, max), where the truth allows:
        :meth:`class_mixture` of the exact P(c | jet), from the jets' ``truth_logp_{c}`` and the
        class fractions of the evaluated jets."""
        if not self.bayes or jets is None:
            return None
        names = list(self.context.class_names)
        if any(f"truth_logp_{c}" not in (jets.dtype.names or ()) for c in names):
            return None
        logs = np.stack([jets[f"truth_logp_{c}"].astype(np.float64) for c in names], -1)
        logs = logs + np.log(class_fractions(jets, len(names)))
        p_class = np.exp(logs - logs.max(-1, keepdims=True))
        return self.class_mixture(table, p_class / p_class.sum(-1, keepdims=True))

    def class_mixture(self, table: np.ndarray, p_class: np.ndarray) -> np.ndarray:
        """Σ_c P(c | jet) P(:attr:`signal` | x, c), (N, max), over the jet classes c of
        ``bayes`` (the toy's exact per-constituent law: a field of the collection or a constant
        each) for the jet class posteriors ``p_class`` (N, classes), exact or a model's."""
        score = np.zeros(table.shape, dtype=np.float64)
        for i, c in enumerate(self.context.class_names):
            given = self.bayes.get(c, 0.0)
            values = table[given].astype(np.float64) if isinstance(given, str) else given
            score += p_class[:, i : i + 1] * values
        return score

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

    def scored(self, table: np.ndarray, model: str) -> tuple[np.ndarray, ...]:
        """(selection, true class, class probabilities) of the real labelled constituents."""
        label = table[self.label].astype(np.int64)
        keep = table[valid_field()] & (label >= 0) & (label < len(self.classes))
        probs = np.stack([table[n][keep] for n in self.predict_names(model)], -1)
        return keep, label[keep], probs

    def confusion(self, truth: np.ndarray, probs: np.ndarray) -> list[list[int]]:
        """Counts of (true class, most probable class) over the scored constituents."""
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(truth, probs.argmax(-1), labels=range(len(self.classes))).tolist()

    def evaluate(
        self, table: np.ndarray, model: str, jets: np.ndarray | None = None
    ) -> dict[str, Any]:
        """AUC of :attr:`signal` against the other classes over real labelled constituents
        (and the Bayes-optimal AUC of the ``bayes`` truth posterior), accuracy, confusion."""
        keep, truth, probs = self.scored(table, model)
        is_signal = truth == self.classes.index(self.signal)
        out: dict[str, Any] = {"n": int(keep.sum()), "signal": self.signal}
        if 0 < is_signal.sum() < len(truth):
            score = probs[:, self.classes.index(self.signal)]
            out["auc"] = auc(score[is_signal], score[~is_signal])
            bayes = self.bayes_score(table, jets)
            if bayes is not None:
                out["bayes_auc"] = auc(bayes[keep][is_signal], bayes[keep][~is_signal])
                out["auc_gap"] = out["bayes_auc"] - out["auc"]
        out["accuracy"] = float(np.mean(probs.argmax(-1) == truth)) if len(truth) else None
        out["confusion"] = self.confusion(truth, probs)
        return out

    def plot(
        self,
        table: np.ndarray,
        model: str,
        directory: Path,
        unit: str,
        jets: np.ndarray | None = None,
    ) -> list[str]:
        """ROC of :attr:`signal` against the rest (with the Bayes-optimal curve) and the
        confusion matrix."""
        from hepsnake.evaluate import plots
        from hepsnake.evaluate.metrics import BAYES, INCLUSIVE, rejection_curve

        keep, truth, probs = self.scored(table, model)
        is_signal = truth == self.classes.index(self.signal)
        if not 0 < is_signal.sum() < len(truth):
            return []
        score = probs[:, self.classes.index(self.signal)]
        curves = {model: {INCLUSIVE: rejection_curve(score[is_signal], score[~is_signal])}}
        bayes_all = self.bayes_score(table, jets)
        if bayes_all is not None:
            bayes = bayes_all[keep]
            curves[BAYES] = {INCLUSIVE: rejection_curve(bayes[is_signal], bayes[~is_signal])}
        title = f"{self.name}: {self.collection} {self.signal} vs the rest"
        names = [plot_name(self.name, "roc"), plot_name(self.name, "confusion")]
        plots.plot_roc(curves, directory / names[0], title, f"{self.collection} {self.signal}")
        plots.plot_confusion(
            self.confusion(truth, probs), self.classes, title, directory / names[1]
        )
        return names


def class_fractions(jets: np.ndarray, n_classes: int) -> np.ndarray:
    """Each class's fraction of ``jets`` (by ``flavour_label``), at least 1e-12."""
    labels = jets["flavour_label"]
    return np.array([max(np.mean(labels == i), 1e-12) for i in range(n_classes)])
