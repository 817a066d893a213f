"""Building blocks: dense nets, Fourier features, in-graph input normalisation."""

import itertools
import math
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
    """Per-variable transform (log1p / clip) then (x - mean) / std, from the norm dict.

    Stored as buffers so an exported model takes raw inputs.
    """

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
        log1p = [e.get("transform") == "log1p" for e in entries]
        lo = [e["transform"]["clip"][0] if is_clip(e) else -math.inf for e in entries]
        hi = [e["transform"]["clip"][1] if is_clip(e) else math.inf for e in entries]
        self.register_buffer("log1p", torch.tensor(log1p, dtype=torch.bool))
        self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32))
        self.register_buffer("hi", torch.tensor(hi, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.log1p, torch.log1p(x.clamp_min(-0.999999)), x)
        x = torch.minimum(torch.maximum(x, self.lo), self.hi)
        return (x - self.mean) / self.std


def is_clip(entry: dict[str, Any]) -> bool:
    return isinstance(entry.get("transform"), dict) and "clip" in entry["transform"]
