"""Building blocks: dense nets, Fourier features, in-graph input normalisation."""

import itertools
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


class Dense(nn.Sequential):
    """Linear layers with activations between them (none after the last unless ``final_act``)."""

    def __init__(
        self,
        n_in: int,
        hidden: list[int],
        n_out: int,
        activation: str = "silu",
        dropout: float = 0.0,
        final_act: bool = False,
    ) -> None:
        sizes = [n_in, *hidden, n_out]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2 or final_act:
                layers.append(ACTIVATIONS[activation]())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.n_out = n_out


class Fourier(nn.Module):
    """x → [x, sin(base^k x), cos(base^k x)] for k < n_freqs; no learnable parameters."""

    def __init__(self, n_freqs: int, base: float = 2.0) -> None:
        super().__init__()
        self.register_buffer("scales", base ** torch.arange(n_freqs, dtype=torch.float32))
        self.n_freqs = n_freqs

    def out_features(self, n_in: int) -> int:
        return n_in * (1 + 2 * self.n_freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x.unsqueeze(-1) * self.scales).flatten(-2)
        return torch.cat([x, torch.sin(scaled), torch.cos(scaled)], dim=-1)


class InputNorm(nn.Module):
    """(x - mean) / std per variable, from the norm dict; stored as buffers so an exported
    model takes unnormalised inputs (transformed inputs are their own prepared fields)."""

    def __init__(self, variables: list[str], norm: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        missing = [v for v in variables if v not in norm]
        if missing:
            raise KeyError(missing[0])
        entries = [norm[v] for v in variables]
        self.register_buffer(
            "mean", torch.tensor([e["mean"] for e in entries], dtype=torch.float32)
        )
        self.register_buffer("std", torch.tensor([e["std"] for e in entries], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
