"""Pooling a set of constituent embeddings into one jet embedding (padding excluded).

Every pooling is built as ``Pool(dim, **options)`` (see :mod:`hepsnake.models.registry`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from hepsnake.models.encoders import key_mask, masked


class SumPool(nn.Module):
    """Sum over real constituents (keeps the multiplicity information)."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked(x, mask).sum(1)


class MeanPool(nn.Module):
    """Mean over real constituents."""

    def __init__(self, dim: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        count = mask.sum(1, keepdim=True).clamp_min(1).to(x.dtype)
        return masked(x, mask).sum(1) / count


class AttentionPool(nn.Module):
    """Global attention pooling: softmax-weighted sum with learned per-constituent scores."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(x).squeeze(-1).masked_fill(~key_mask(mask), float("-inf"))
        weights = scores.softmax(dim=1)
        return (weights.unsqueeze(-1) * masked(x, mask)).sum(1)


class CrossAttentionPool(nn.Module):
    """A learnable class token attends over the real constituents (multi-head)."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.q, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(self.token).expand(b, 1, d).view(b, 1, h, d // h).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, h, d // h).unbind(2)
        att = F.scaled_dot_product_attention(
            q, k.transpose(1, 2), v.transpose(1, 2), attn_mask=key_mask(mask)[:, None, None, :]
        )
        pooled = self.out(att.transpose(1, 2).reshape(b, d))
        return torch.where(mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))
