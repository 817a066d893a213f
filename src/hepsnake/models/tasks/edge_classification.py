"""Edge classification: does each constituent pair of a collection share a vertex (Salt's
vertexing task)? Per-jet vertices are then found from the pair scores.

The label field is a per-constituent vertex index (negative: from no vertex); a pair is
positive when both constituents carry the same non-negative index. The predicted vertex
index of each constituent, ``{model}_{name}_vertex``, is the smallest index of its
connected component over pairs scored above one half (-1 for a constituent in no pair).
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.models.tasks.base import Context, Task, Trunk
from hepsnake.names import task_field, valid_field

if TYPE_CHECKING:
    import torch
    from torch import nn


class EdgeClassification(Task):
    """Weighted binary cross-entropy over the real pairs i != j of each jet."""

    level = "constituent"

    def __init__(
        self,
        context: Context,
        name: str,
        collection: str,
        label: str,
        weight: float = 1.0,
        hidden: int | None = None,
    ) -> None:
        super().__init__(context, name, weight)
        self.collection, self.label, self.hidden = collection, label, hidden

    @property
    def dataset(self) -> str:
        return self.collection

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import PairHead

        return PairHead(self.collection, trunk.dim, self.hidden or trunk.dim)

    def labels(self) -> list[tuple[str, str]]:
        return [(self.collection, self.label)]

    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        import torch
        import torch.nn.functional as F

        from hepsnake.models.tasks.base import label_key
        from hepsnake.models.tasks.heads import weighted_mean

        vertex = batch[label_key(self.collection, self.label)].long()
        mask = batch[f"{self.collection}_mask"]
        target = (vertex.unsqueeze(2) == vertex.unsqueeze(1)) & (vertex >= 0).unsqueeze(2)
        n = vertex.shape[1]
        real = mask.unsqueeze(2) & mask.unsqueeze(1) & ~torch.eye(n, dtype=torch.bool)
        bce = F.binary_cross_entropy_with_logits(output.float(), target.float(), reduction="none")
        weights = batch["weight"][:, None, None] * real
        correct = ((output > 0) == target).float()
        return {"loss": weighted_mean(bce, weights), "acc": weighted_mean(correct, weights)}

    def predict_names(self, model: str) -> list[str]:
        return [task_field(model, self.name, "vertex")]

    def export_names(self, model: str) -> list[str]:
        """ONNX gives the pair probabilities (B, n, n): vertex finding is a loop."""
        return [task_field(model, self.name, "pedge")]

    def export(self, output: "torch.Tensor") -> list["torch.Tensor"]:
        return [output.float().sigmoid()]

    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        """Vertex indices by label propagation over the pairs scored above one half."""
        import torch

        n = output.shape[1]
        linked = (output > 0) & ~torch.eye(n, dtype=torch.bool, device=output.device)
        index = torch.arange(n, device=output.device).expand(output.shape[0], n)
        big = torch.full_like(output, float(n))
        component = index.float()
        for _ in range(max(n - 1, 0)):
            neighbour = torch.where(linked, component.unsqueeze(1).expand_as(big), big)
            updated = torch.minimum(component, neighbour.min(-1).values)
            if torch.equal(updated, component):
                break
            component = updated
        vertex = torch.where(linked.any(-1), component, torch.full_like(component, -1.0))
        return {self.predict_names(model)[0]: vertex}

    def evaluate(self, table: np.ndarray, model: str) -> dict[str, Any]:
        """Vertex efficiency (truth vertices of 2+ constituents found) and purity (found
        vertices of 2+ constituents that match a truth vertex); a match shares more than
        half of the constituents of both."""
        truth = table[self.label].astype(np.int64)
        found = np.nan_to_num(table[self.predict_names(model)[0]], nan=-1).astype(np.int64)
        valid = table[valid_field()]
        n_truth = n_found = matched_truth = matched_found = 0
        for t_row, f_row, v_row in zip(truth, found, valid, strict=True):
            t_row, f_row = t_row[v_row], f_row[v_row]
            t_sets = [set(np.flatnonzero(t_row == v)) for v in np.unique(t_row[t_row >= 0])]
            f_sets = [set(np.flatnonzero(f_row == v)) for v in np.unique(f_row[f_row >= 0])]
            t_sets = [s for s in t_sets if len(s) >= 2]
            f_sets = [s for s in f_sets if len(s) >= 2]
            pairs = [
                (i, j)
                for i, t in enumerate(t_sets)
                for j, f in enumerate(f_sets)
                if 2 * len(t & f) > max(len(t), len(f))
            ]
            n_truth, n_found = n_truth + len(t_sets), n_found + len(f_sets)
            matched_truth += len({i for i, _ in pairs})
            matched_found += len({j for _, j in pairs})
        return {
            "n_truth_vertices": n_truth,
            "n_found_vertices": n_found,
            "efficiency": matched_truth / n_truth if n_truth else None,
            "purity": matched_found / n_found if n_found else None,
        }
