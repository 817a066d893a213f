"""Feature-wise linear modulation by the physics parameters (e.g. the LLP mass)."""

import torch
from torch import nn

from hepsnake.config.contracts import Film
from hepsnake.errors import HepsnakeError
from hepsnake.models.layers import Dense


class FiLM(nn.Module):
    """x → γ(p) ⊙ x + β(p) at the configured places: ``input`` (each collection after its
    init net), ``encoder`` (after every encoder layer, one net per layer), ``pooled``.

    Small dense nets give γ (1 + output) and/or β per place; optional layer norm of x first.
    """

    def __init__(self, n_params: int, dim: int, cfg: Film, encoder_layers: int) -> None:
        super().__init__()
        self.where = list(cfg.where)
        self.scale, self.bias = cfg.scale, cfg.bias
        if not (self.scale or self.bias):
            raise HepsnakeError("model: film", "scale and bias are both false")
        n_out = dim * (int(self.scale) + int(self.bias))
        hidden = list(cfg.hidden)
        layer_norm = cfg.layer_norm

        def net() -> nn.Module:
            return Dense(n_params, hidden, n_out)

        def norm() -> nn.Module:
            return nn.LayerNorm(dim) if layer_norm else nn.Identity()

        self.nets, self.norms = nn.ModuleDict(), nn.ModuleDict()
        for w in self.where:
            if w == "encoder":
                self.nets[w] = nn.ModuleList(net() for _ in range(encoder_layers))
                self.norms[w] = nn.ModuleList(norm() for _ in range(encoder_layers))
            else:
                self.nets[w], self.norms[w] = net(), norm()

    def forward(
        self, x: torch.Tensor, params: torch.Tensor, where: str, layer: int = 0
    ) -> torch.Tensor:
        """``x`` modulated at place ``where`` (``layer``: the encoder layer); else unchanged."""
        if where not in self.nets:
            return x
        net, norm = self.nets[where], self.norms[where]
        if where == "encoder":
            net, norm = net[layer], norm[layer]
        out = net(params)
        if x.dim() == 3:
            out = out.unsqueeze(1)
        x = norm(x)
        gamma, beta = 1.0, 0.0
        if self.scale and self.bias:
            g, beta = out.chunk(2, dim=-1)
            gamma = 1.0 + g
        elif self.scale:
            gamma = 1.0 + out
        else:
            beta = out
        return gamma * x + beta
