"""The head modules and the weighted loss average the tasks share (imports torch)."""

from collections.abc import Sequence

import torch
from torch import nn

from hepsnake.models.encoders import masked
from hepsnake.models.layers import Dense
from hepsnake.models.tasks.base import TrunkOutput

PADDED = -1.0e4  # the pair logit of a pair with a padded slot


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ w·v / Σ|w|: the weighted mean for weights ≥ 0; with negative (NLO) weights a batch
    whose Σ w is near 0 still gives a loss no larger than max |v| (0 when every weight is 0)."""
    total = weights.abs().sum()
    return (values * weights).sum() / total.clamp_min(torch.finfo(values.dtype).tiny)


class JetHead(nn.Module):
    """A dense net on the jet representation: (B, n_out), or (B,) when ``squeeze``."""

    def __init__(
        self, n_in: int, hidden: Sequence[int], n_out: int, dropout: float, squeeze: bool = False
    ) -> None:
        super().__init__()
        self.net = Dense(n_in, list(hidden), n_out, dropout=dropout)
        self.squeeze = squeeze

    def forward(self, trunk: TrunkOutput) -> torch.Tensor:
        out = self.net(trunk.jet)
        return out.squeeze(-1) if self.squeeze else out


class ConstituentHead(nn.Module):
    """A dense net on each encoded constituent of one collection joined to its jet's
    representation: (B, n, n_out) logits, zero on padding.

    With ``mixture`` M > 1 the head gives M class distributions per constituent, mixed with
    per-jet weights from the jet representation, and returns the mixture's log-probabilities:
    P(k | x, jet) = Σ_m w_m(jet) P_m(k | x, jet), the form of the posterior when the
    constituent's law depends on a jet-level category (its flavour, or LLP or not). The
    weights come from a dense net as wide as the head: they play the jet category's
    posterior, which a jet classification head needs its hidden layers for.
    """

    def __init__(
        self,
        collection: str,
        dim: int,
        jet_width: int,
        hidden: Sequence[int],
        n_out: int,
        mixture: int = 1,
    ) -> None:
        super().__init__()
        self.collection, self.n_out, self.mixture = collection, n_out, mixture
        self.net = Dense(dim + jet_width, list(hidden), n_out * mixture)
        self.gate = Dense(jet_width, list(hidden), mixture) if mixture > 1 else None

    def forward(self, trunk: TrunkOutput) -> torch.Tensor:
        x, mask = trunk.constituents[self.collection], trunk.masks[self.collection]
        jet = trunk.jet.unsqueeze(1).expand(-1, x.shape[1], -1)
        out = self.net(torch.cat([x, jet], dim=-1))
        if self.gate is not None:
            logits = out.unflatten(-1, (self.mixture, self.n_out)).log_softmax(-1)
            weights = self.gate(trunk.jet).log_softmax(-1)[:, None, :, None]
            out = torch.logsumexp(logits + weights, dim=2)
        return masked(out, mask)


class PairHead(nn.Module):
    """A symmetric score for each constituent pair of one collection: (B, n, n) logits.

    The first layer on [x_i, x_j] is split into W_i x_i + W_j x_j (two (B, n, ·) products,
    not one on n² pairs); the score is averaged with its transpose, and pairs with a padded
    slot score ``PADDED`` (certainly not linked).
    """

    def __init__(self, collection: str, dim: int, hidden: int) -> None:
        super().__init__()
        self.collection = collection
        self.left, self.right = nn.Linear(dim, hidden), nn.Linear(dim, hidden, bias=False)
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, trunk: TrunkOutput) -> torch.Tensor:
        x, mask = trunk.constituents[self.collection], trunk.masks[self.collection]
        pairs = self.left(x).unsqueeze(2) + self.right(x).unsqueeze(1)
        score = self.out(pairs).squeeze(-1)
        real = mask.unsqueeze(2) & mask.unsqueeze(1)
        padded = torch.full((), PADDED, dtype=score.dtype, device=score.device)
        return torch.where(real, 0.5 * (score + score.transpose(1, 2)), padded)
