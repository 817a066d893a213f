"""Jet regression of one jet field (e.g. a mass or the truth pt); NaN targets are skipped.

The head predicts the target standardised with the training jets' finite values (``mean``,
``std``, filled in by the train stage when not configured); predictions are in the target's
own units, in the field ``{model}_{name}``.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.models.tasks.base import Context, Task, Trunk, plot_name
from hepsnake.names import task_field

if TYPE_CHECKING:
    import torch
    from torch import nn


class JetRegression(Task):
    """Weighted mean squared error of the standardised target over jets with a finite one."""

    level = "jet"

    def __init__(
        self,
        context: Context,
        name: str,
        target: str,
        weight: float = 1.0,
        mean: float = 0.0,
        std: float = 1.0,
        hidden: Sequence[int] | None = None,
    ) -> None:
        super().__init__(context, name, weight)
        self.target, self.mean, self.std, self.hidden = target, mean, std, hidden

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import JetHead

        hidden = self.hidden if self.hidden is not None else trunk.head_hidden
        return JetHead(trunk.jet_width, hidden, 1, 0.0, squeeze=True)

    def labels(self) -> list[tuple[str, str]]:
        return [("jets", self.target)]

    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        import torch

        from hepsnake.models.tasks.heads import weighted_mean

        target = batch[self.target].float()
        finite = torch.isfinite(target)
        scaled = (torch.nan_to_num(target) - self.mean) / self.std
        mse = (output.float() - scaled) ** 2
        return {"loss": weighted_mean(mse, batch["weight"] * finite)}

    def predict_names(self, model: str) -> list[str]:
        return [task_field(model, self.name, "")]

    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        return {self.predict_names(model)[0]: output.float() * self.std + self.mean}

    def evaluate(
        self, table: np.ndarray, model: str, jets: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Bias, RMS and the relative resolution (half the 16-84 % width of pred/true - 1)."""
        true = table[self.target].astype(np.float64)
        pred = table[self.predict_names(model)[0]].astype(np.float64)
        keep = np.isfinite(true) & np.isfinite(pred)
        if not keep.any():
            return {"n": 0}
        residual = pred[keep] - true[keep]
        out = {
            "n": int(keep.sum()),
            "bias": float(residual.mean()),
            "rms": float(np.sqrt(np.mean(residual**2))),
        }
        nonzero = true[keep] != 0
        if nonzero.any():
            ratio = pred[keep][nonzero] / true[keep][nonzero] - 1
            lo, hi = np.percentile(ratio, [16, 84])
            out["resolution"] = float(0.5 * (hi - lo))
        return out

    def plot(
        self,
        table: np.ndarray,
        model: str,
        directory: Path,
        unit: str,
        jets: np.ndarray | None = None,
    ) -> list[str]:
        """Residuals and the resolution against jet pt."""
        from hepsnake.evaluate import plots

        true = table[self.target].astype(np.float64)
        pred = table[self.predict_names(model)[0]].astype(np.float64)
        keep = np.isfinite(true) & np.isfinite(pred) & (true != 0)
        if not keep.any():
            return []
        pt = table["pt"][keep] if "pt" in (table.dtype.names or ()) else None
        name = plot_name(self.name, "residuals")
        plots.plot_residuals(true[keep], pred[keep], pt, self.name, unit, directory / name)
        return [name]
