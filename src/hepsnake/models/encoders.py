"""Constituent encoders; every one honours the padding mask (True = real constituent).

Each takes an optional ``modulate(layer, x)`` applied after each of its ``n_layers`` layers
(FiLM at the encoder layers); its output is masked again. One with ``n_registers`` > 0
returns that many learned tokens after the constituents (B, n + n_registers, dim), which the
tagger pools with them. Every encoder is built as
``Encoder(dim, **options)`` (see :mod:`hepsnake.models.registry`). One with ``takes_edges``
is also built with ``edge_dim`` (the number of edge features, :mod:`hepsnake.models.edges`)
when the model has them, and then called with ``edges`` (B, n, n, edge_dim).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hepsnake.models.layers import Dense


def key_mask(mask: torch.Tensor) -> torch.Tensor:
    """Attention keys: the real constituents, or every slot of a jet that has none.

    A jet without constituents then attends to (zeroed) padding instead of producing NaN;
    its outputs are masked away afterwards.
    """
    return mask | ~mask.any(1, keepdim=True)


def masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the padded slots (where, not multiply, so NaN or inf there cannot leak)."""
    return torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


Modulate = Callable[[int, torch.Tensor], torch.Tensor]


def after_layer(
    x: torch.Tensor, mask: torch.Tensor, layer: int, modulate: Modulate | None
) -> torch.Tensor:
    """``x`` passed through ``modulate`` after encoder layer ``layer`` (padding re-zeroed)."""
    return x if modulate is None else masked(modulate(layer, x), mask)


class DeepSets(nn.Module):
    """Per-constituent dense layers, each also fed the masked mean of the previous layer."""

    def __init__(self, dim: int, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Dense(2 * dim, [dim], dim, dropout=dropout, final_act=True) for _ in range(layers)
        )
        self.n_layers = layers

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, modulate: Modulate | None = None
    ) -> torch.Tensor:
        count = mask.sum(1, keepdim=True).clamp_min(1).unsqueeze(-1).to(x.dtype)
        for i, block in enumerate(self.blocks):
            context = (masked(x, mask).sum(1, keepdim=True) / count).expand_as(x)
            x = masked(x + block(torch.cat([x, context], dim=-1)), mask)
            x = after_layer(x, mask, i, modulate)
        return x


class GatedDense(nn.Module):
    """A gated linear unit block: ``out(SiLU(a) * b)`` with ``[a, b]`` one linear map of the
    input (Salt's ``GLU`` with ``gated: true``), ``hidden`` wide."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.inner = nn.Linear(dim, 2 * hidden)
        self.out = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.inner(x).chunk(2, dim=-1)
        return self.out(self.dropout(F.silu(a) * b))


class TransformerLayer(nn.Module):
    """Pre-norm self-attention with ``scaled_dot_product_attention`` and a dense block
    (``gated``: a :class:`GatedDense`), 2 × dim wide."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        edge_dim: int = 0,
        gated: bool = False,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.edge_bias = nn.Linear(edge_dim, heads) if edge_dim else None
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dense = (
            GatedDense(dim, 2 * dim, dropout)
            if gated
            else Dense(dim, [2 * dim], dim, dropout=dropout)
        )
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, edges: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``edges``, a per-head additive attention bias (a linear map of them)."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        attn_mask = key_mask(mask)[:, None, None, :]
        if self.edge_bias is not None and edges is not None:
            bias = self.edge_bias(edges).permute(0, 3, 1, 2)
            attn_mask = bias.masked_fill(~attn_mask, float("-inf"))
        att = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + masked(self.out(att.transpose(1, 2).reshape(b, n, d)), mask)
        return masked(x + self.dense(self.norm2(x)), mask)


class Transformer(nn.Module):
    """A stack of :class:`TransformerLayer` with a final layer norm.

    ``registers`` learned tokens (Salt's ``num_registers``) join every jet's constituents,
    attended to and attending like real ones, and are returned after them: a constituent can
    attend to them instead of to the others (softmax weights sum to one), what they gather is
    a jet-wide summary every constituent reads back, and in the pooling their share of the
    softmax weights depends on how many constituents the jet has.
    """

    takes_edges = True

    def __init__(
        self,
        dim: int,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
        edge_dim: int = 0,
        gated: bool = False,
        registers: int = 0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, dropout, edge_dim, gated) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.n_layers = layers
        # Salt's initialisation: near zero, so each starts as a neutral token
        self.registers = nn.Parameter(torch.randn(registers, dim) * 1e-4) if registers else None
        self.n_registers = registers

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        modulate: Modulate | None = None,
        edges: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.registers is not None:
            x, mask, edges = self.with_registers(x, mask, edges)
        for i, layer in enumerate(self.layers):
            x = after_layer(layer(x, mask, edges), mask, i, modulate)
        return masked(self.norm(x), mask)

    def with_registers(
        self, x: torch.Tensor, mask: torch.Tensor, edges: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``x``, ``mask`` and ``edges`` with the register tokens appended (real in the
        mask; their edge features 0)."""
        assert self.registers is not None
        b, r = x.shape[0], self.registers.shape[0]
        x = torch.cat([x, self.registers.to(x.dtype).expand(b, -1, -1)], dim=1)
        mask = torch.cat([mask, mask.new_ones(b, r)], dim=1)
        if edges is not None:
            edges = F.pad(edges, (0, 0, 0, r, 0, r))
        return x, mask, edges


class LSTM(nn.Module):
    """A (bi-)LSTM over the real constituents in order (the CalRatio 2019 RNN family).

    The stacked layers are one ``nn.LSTM``, so ``modulate`` runs once, after the projection.
    """

    def __init__(self, dim: int, layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers, batch_first=True, bidirectional=bidirectional)
        self.project = nn.Linear(dim * (2 if bidirectional else 1), dim)
        self.n_layers = 1

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, modulate: Modulate | None = None
    ) -> torch.Tensor:
        # collections are concatenated, so move every real constituent to the front (stable)
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        index = order.unsqueeze(-1).expand_as(x)
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(
            masked(x, mask).gather(1, index), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        out = self.project(out)
        restored = torch.empty_like(out).scatter_(1, order.unsqueeze(-1).expand_as(out), out)
        return after_layer(masked(restored, mask), mask, 0, modulate)


class GATv2(nn.Module):
    """GATv2-style attention layers: score_ij = a · LeakyReLU(W [x_i, x_j]) over real j,
    plus a per-head linear map of the edge features e_ij where the model has them."""

    takes_edges = True

    def __init__(self, dim: int, layers: int = 2, heads: int = 4, edge_dim: int = 0) -> None:
        super().__init__()
        self.heads = heads
        self.edge_bias = nn.ModuleList(
            nn.Linear(edge_dim, heads) for _ in range(layers if edge_dim else 0)
        )
        self.w = nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(layers))
        self.a = nn.ParameterList(
            nn.Parameter(torch.randn(heads, dim // heads) * 0.1) for _ in range(layers)
        )
        self.v = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.n_layers = layers

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        modulate: Modulate | None = None,
        edges: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, n, d = x.shape
        layers = zip(self.w, self.a, self.v, self.norms, strict=True)
        for i, (w, a, v, norm) in enumerate(layers):
            # W [x_i, x_j] = W_i x_i + W_j x_j: two (b, n, d) products, not one on n² pairs
            left = F.linear(x, w.weight[:, :d], w.bias)
            right = F.linear(x, w.weight[:, d:])
            pairs = left.unsqueeze(2) + right.unsqueeze(1)
            hidden = F.leaky_relu(pairs, 0.2).view(b, n, n, self.heads, d // self.heads)
            keys = key_mask(mask)[:, None, :, None]
            score = (hidden * a).sum(-1)
            if edges is not None:
                score = score + self.edge_bias[i](edges)
            alpha = score.masked_fill(~keys, float("-inf")).softmax(dim=2)
            values = v(x).view(b, n, self.heads, d // self.heads)
            update = torch.einsum("bijh,bjhc->bihc", alpha, values).reshape(b, n, d)
            x = after_layer(masked(norm(x + update), mask), mask, i, modulate)
        return x
