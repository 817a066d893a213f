"""Salt's edge (pair) features between the constituents of one collection, in the graph.

From each constituent's raw pt, η and φ (the un-normalised inputs the tagger receives;
``model.edge_features`` names the variables), per pair (i, j) of real constituents:
``dR`` = ln ΔR, ``kt`` = ln(min(pt_i, pt_j) ΔR), ``z`` = ln(min(pt_i, pt_j) / (pt_i + pt_j)),
``isSelfLoop`` = [i = j]; Δφ is wrapped into [-π, π), the logarithms' arguments floored at
:data:`EPS`. A pt read through a ``log1p`` input transform (the prepared field ``log_{pt}``)
is undone with expm1. Pairs with a padded slot or a constituent of another collection are 0.
"""

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hepsnake.config.contracts import EdgeFeatures as EdgeSpec
from hepsnake.errors import HepsnakeError

FEATURES = ("dR", "kt", "z", "isSelfLoop")
EPS = 1e-8
WHERE = "model: edge_features"


def column(
    fields: Sequence[str], variable: str, collection: str, where: str = WHERE, log: bool = False
) -> int:
    """The index of ``variable`` among a collection's input ``fields``; with ``log``, of
    its ``log1p`` field ``log_{variable}`` if the variable itself is not read. A missing
    variable is an error at the config key ``where``."""
    if variable in fields:
        return list(fields).index(variable)
    if log and f"log_{variable}" in fields:
        return list(fields).index(f"log_{variable}")
    raise HepsnakeError(where, f"{collection!r} inputs have no variable {variable!r}")


def pair_features(
    pt: torch.Tensor,
    eta: torch.Tensor,
    phi: torch.Tensor,
    valid: torch.Tensor,
    features: Sequence[str] = FEATURES,
) -> torch.Tensor:
    """``features`` (B, n, n, len) of every pair of slots (B, n) where both are ``valid``."""
    deta = eta.unsqueeze(2) - eta.unsqueeze(1)
    dphi = phi.unsqueeze(2) - phi.unsqueeze(1)
    dphi = dphi - 2 * math.pi * torch.floor((dphi + math.pi) / (2 * math.pi))
    dr = torch.sqrt(deta * deta + dphi * dphi)
    low = torch.minimum(pt.unsqueeze(2), pt.unsqueeze(1))
    total = pt.unsqueeze(2) + pt.unsqueeze(1)
    slots = torch.arange(pt.shape[1], device=pt.device)
    computed = {
        "dR": lambda: torch.log(dr.clamp_min(EPS)),
        "kt": lambda: torch.log((low * dr).clamp_min(EPS)),
        "z": lambda: torch.log((low / total.clamp_min(EPS)).clamp_min(EPS)),
        "isSelfLoop": lambda: (slots.unsqueeze(1) == slots.unsqueeze(0)).to(pt.dtype).expand_as(dr),
    }
    out = torch.stack([computed[f]() for f in features], dim=-1)
    pairs = (valid.unsqueeze(2) & valid.unsqueeze(1)).unsqueeze(-1)
    return torch.where(pairs, out, torch.zeros((), dtype=out.dtype, device=out.device))


class EdgeFeatures(nn.Module):
    """The configured edge features over the tagger's concatenated collections: (B, N, N, F).

    ``cfg`` is ``model.edge_features`` (``collection``, the ``pt``/``eta``/``phi`` variable
    names, ``features``); ``fields`` the input fields of each collection, in the tagger's
    order."""

    def __init__(self, cfg: EdgeSpec, fields: Mapping[str, Sequence[str]]) -> None:
        super().__init__()
        self.collection = cfg.collection
        if self.collection not in fields:
            raise HepsnakeError(WHERE, f"collection {self.collection!r} is not a model input")
        names = fields[self.collection]
        self.pt = column(names, cfg.pt, self.collection, log=True)
        self.log_pt = names[self.pt] != cfg.pt
        self.eta = column(names, cfg.eta, self.collection)
        self.phi = column(names, cfg.phi, self.collection)
        self.features = list(cfg.features)
        self.order = list(fields)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def forward(
        self, raw: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """From the raw inputs (B, n_c, f) and masks (B, n_c) of every collection."""
        zero = torch.zeros((), dtype=raw[self.collection].dtype, device=raw[self.collection].device)
        parts: list[list[torch.Tensor]] = [[], [], [], []]
        for c in self.order:
            mask = masks[c]
            if c == self.collection:
                x = torch.where(mask.unsqueeze(-1), raw[c], zero)
                pt = torch.expm1(x[..., self.pt]) if self.log_pt else x[..., self.pt]
                columns = [pt, x[..., self.eta], x[..., self.phi], mask]
            else:
                none = torch.zeros_like(raw[c][..., 0])
                columns = [none, none, none, torch.zeros_like(mask)]
            for part, value in zip(parts, columns, strict=True):
                part.append(value)
        pt, eta, phi, valid = (torch.cat(p, dim=1) for p in parts)
        return pair_features(pt, eta, phi, valid, self.features)
