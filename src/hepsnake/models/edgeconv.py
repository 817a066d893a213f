"""DGCNN EdgeConv over the real constituents, in ONNX-exportable ops (TopK, Gather).

Each layer finds every constituent's ``k`` nearest real neighbours (never itself, never a
padded slot) and updates x_i by aggregating an edge MLP on [x_i, x_j - x_i] over them
(max or mean), with a residual and a layer norm. The distance is taken in the current
layer's features (``space: embedding``: the dynamic graph of DGCNN) or in raw constituent
variables named by ``space`` (e.g. ``[deta, dphi]``: a static graph, the same for every
layer), which the tagger passes as ``coordinates``.
"""

import torch
import torch.nn.functional as F
from torch import nn

from hepsnake.models.encoders import Modulate, after_layer, masked
from hepsnake.models.layers import Dense


def nearest(space: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, n, k) of each slot's ``k`` nearest real other slots in ``space``
    (B, n, c), and whether each is a neighbour at all (False where a jet has fewer).

    The distances get ``k`` extra columns at infinity, so TopK always has ``k`` candidates
    whatever ``n`` (an exported graph has no fixed ``n``); a non-neighbour's index is 0.
    """
    squared = (space * space).sum(-1)
    dist = squared.unsqueeze(2) + squared.unsqueeze(1) - 2 * space @ space.transpose(1, 2)
    slots = torch.arange(mask.shape[1], device=mask.device)
    allowed = mask.unsqueeze(1) & (slots.unsqueeze(1) != slots.unsqueeze(0))
    dist = torch.where(allowed, dist, torch.full((), float("inf"), dtype=dist.dtype))
    values, index = F.pad(dist, (0, k), value=float("inf")).topk(k, dim=-1, largest=False)
    valid = values < float("inf")
    return torch.where(valid, index, torch.zeros_like(index)), valid


def neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x_j (B, n, k, d) for the indices (B, n, k) into each jet's own slots of x (B, n, d).

    Gathered per jet, never through a (B·n, d) view: exported, a jet without constituents
    would ask ONNX's Reshape for a dimension 0, which Reshape reads as "keep the input's".
    """
    b, n, k = index.shape
    flat = index.flatten(1).unsqueeze(-1).expand(-1, -1, x.shape[-1])
    return x.gather(1, flat).view(b, n, k, x.shape[-1])


class EdgeConvLayer(nn.Module):
    """x_i + agg_j MLP([x_i, x_j - x_i]) over the given neighbours, layer-normed."""

    def __init__(self, dim: int, aggregation: str) -> None:
        super().__init__()
        self.mlp = Dense(2 * dim, [dim], dim, final_act=True)
        self.norm = nn.LayerNorm(dim)
        self.aggregation = aggregation

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, index: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        xj = neighbours(x, index)
        xi = x.unsqueeze(2).expand_as(xj)
        h = self.mlp(torch.cat([xi, xj - xi], dim=-1))
        keep = valid.unsqueeze(-1)
        zero = torch.zeros((), dtype=h.dtype, device=h.device)
        if self.aggregation == "max":
            # finite, so the exported ``Where(any, agg, 0)`` may become ``agg · any``
            lowest = torch.full((), torch.finfo(h.dtype).min, dtype=h.dtype, device=h.device)
            agg = torch.where(keep, h, lowest).amax(2)
            agg = torch.where(valid.any(2, keepdim=True), agg, zero)
        else:
            count = valid.sum(2, keepdim=True).clamp_min(1).to(h.dtype)
            agg = torch.where(keep, h, zero).sum(2) / count
        return masked(self.norm(x + agg), mask)


class EdgeConv(nn.Module):
    """A stack of :class:`EdgeConvLayer` on a kNN graph (module docstring).

    ``coordinates`` lists the raw variables of a static graph (empty: dynamic); the tagger
    then calls the encoder with ``coordinates=`` (B, n, len) of them, padded slots zero.
    """

    def __init__(
        self,
        dim: int,
        layers: int = 2,
        k: int = 8,
        aggregation: str = "max",
        space: str | list[str] = "embedding",
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EdgeConvLayer(dim, aggregation) for _ in range(layers))
        self.k = k
        self.coordinates = [] if space == "embedding" else list(space)
        self.n_layers = layers

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        modulate: Modulate | None = None,
        coordinates: torch.Tensor | None = None,
    ) -> torch.Tensor:
        graph = None if coordinates is None else nearest(coordinates, mask, self.k)
        for i, layer in enumerate(self.layers):
            index, valid = graph or nearest(masked(x, mask), mask, self.k)
            x = after_layer(layer(x, mask, index, valid), mask, i, modulate)
        return x
