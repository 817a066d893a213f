"""Feature-wise linear modulation by the physics parameters (e.g. the LLP mass)."""

from typing import Any

import torch
from torch import nn

from hepsnake.models.layers import Dense


class FiLM(nn.Module):
    """x → γ(p) ⊙ x + β(p) at the configured places (``input``, ``encoder``, ``pooled``).

    Small dense nets give γ (around 1) and/or β per place; optional layer norm first.
    """

    def __init__(self, n_params: int, dim: int, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.where = list(cfg.get("where", ["input"]))
        self.scale, self.bias = cfg.get("scale", True), cfg.get("bias", True)
        n_out = dim * (int(self.scale) + int(self.bias))
        hidden = list(cfg.get("hidden", [32]))
        self.nets = nn.ModuleDict({w: Dense(n_params, hidden, n_out) for w in self.where})
        self.norms = nn.ModuleDict(
            {
                w: nn.LayerNorm(dim) if cfg.get("layer_norm", False) else nn.Identity()
                for w in self.where
            }
        )

    def forward(self, x: torch.Tensor, params: torch.Tensor, where: str) -> torch.Tensor:
        if where not in self.nets:
            return x
        out = self.nets[where](params)
        if x.dim() == 3:
            out = out.unsqueeze(1)
        x = self.norms[where](x)
        gamma, beta = 1.0, 0.0
        if self.scale and self.bias:
            g, beta = out.chunk(2, dim=-1)
            gamma = 1.0 + g
        elif self.scale:
            gamma = 1.0 + out
        else:
            beta = out
        return gamma * x + beta
