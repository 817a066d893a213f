"""The tagger: input norm → init nets → encoder → pooling → heads, assembled from config.

A new architecture is a model YAML change: encoder ``type`` (deepsets, transformer, lstm,
gatv2), pooling ``type`` (sum, mean, attention, cross_attention), jet variables joined to
every constituent or after pooling, optional Fourier features, parameters by concatenation
or FiLM.
"""

from typing import Any

import torch
from torch import nn

from hepsnake.data.loader import InputSpec
from hepsnake.models.encoders import build_encoder, masked
from hepsnake.models.film import FiLM
from hepsnake.models.layers import Dense, Fourier, InputNorm
from hepsnake.models.pooling import build_pooling


class Tagger(nn.Module):
    """Jet classifier over heterogeneous constituent collections (plus an optional aux head)."""

    def __init__(
        self,
        cfg: dict[str, Any],
        spec: InputSpec,
        norm: dict[str, dict[str, Any]],
        n_classes: int,
        param_norm: dict[str, dict[str, float]] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.collections = spec.constituents
        self.jet_mode = cfg.get("jet_inputs", "constituents")
        dim = cfg["dim"]
        self.norms = nn.ModuleDict({c: InputNorm(v, norm[c]) for c, v in spec.variables.items()})
        self.param_norm = InputNorm(spec.parameters, param_norm) if spec.parameters else None
        film_cfg = cfg.get("film") if spec.parameters else None
        concat_params = bool(spec.parameters) and not film_cfg
        n_global = len(spec.variables.get("jets", [])) + (
            len(spec.parameters) if concat_params else 0
        )
        self.concat_params = concat_params
        fourier = cfg.get("fourier")
        self.fourier = Fourier(fourier["n_freqs"], fourier.get("base", 2.0)) if fourier else None

        def width(n: int) -> int:
            return self.fourier.out_features(n) if self.fourier else n

        to_constituents = n_global if self.jet_mode == "constituents" else 0
        init = cfg.get("init_nets", {})
        self.init_nets = nn.ModuleDict(
            {
                c: Dense(
                    width(len(spec.variables[c]) + to_constituents),
                    list(init.get(c, init.get("default", {"hidden": [dim]}))["hidden"]),
                    dim,
                    final_act=True,
                )
                for c in self.collections
            }
        )
        self.encoder = build_encoder(cfg["encoder"], dim)
        self.film = (
            FiLM(len(spec.parameters), dim, film_cfg, self.encoder.n_layers) if film_cfg else None
        )
        self.pool = build_pooling(cfg["pooling"], dim)
        head_in = dim + (width(n_global) if self.jet_mode == "pooled" else 0)
        head = cfg.get("head", {"hidden": [dim]})
        self.head = Dense(
            head_in, list(head["hidden"]), n_classes, dropout=head.get("dropout", 0.0)
        )
        aux = cfg.get("aux")
        self.aux = Dense(head_in, list(aux.get("hidden", [dim])), 1) if aux else None

    def global_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        parts = []
        if "jets" in self.norms:
            parts.append(self.norms["jets"](batch["jets"]))
        if self.concat_params:
            parts.append(self.param_norm(batch["params"]))
        return torch.cat(parts, dim=-1) if parts else None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``logits`` (B, classes) and, with an aux head, ``aux`` (B,)."""
        glob = self.global_features(batch)
        params = self.param_norm(batch["params"]) if self.film is not None else None
        embedded, masks = [], []
        for c in self.collections:
            x = self.norms[c](batch[c])
            mask = batch[f"{c}_mask"]
            if self.jet_mode == "constituents" and glob is not None:
                x = torch.cat([x, glob.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
            if self.fourier is not None:
                x = self.fourier(x)
            x = self.init_nets[c](x)
            if params is not None:
                x = self.film(x, params, "input")
            embedded.append(masked(x, mask))
            masks.append(mask)
        x, mask = torch.cat(embedded, dim=1), torch.cat(masks, dim=1)
        modulate = None
        if params is not None and "encoder" in self.film.where:

            def modulate(layer: int, h: torch.Tensor) -> torch.Tensor:
                return self.film(h, params, "encoder", layer)

        x = self.pool(self.encoder(x, mask, modulate), mask)
        if params is not None:
            x = self.film(x, params, "pooled")
        if self.jet_mode == "pooled" and glob is not None:
            g = self.fourier(glob) if self.fourier is not None else glob
            x = torch.cat([x, g], dim=-1)
        out = {"logits": self.head(x)}
        if self.aux is not None:
            out["aux"] = self.aux(x).squeeze(-1)
        return out
