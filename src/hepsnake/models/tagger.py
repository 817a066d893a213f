"""The tagger: input norm → init nets → encoder → pooling → heads, assembled from config.

A new architecture is a model YAML change: encoder ``type`` (deepsets, transformer, lstm,
gatv2), pooling ``type`` (sum, mean, attention, cross_attention), jet variables joined to
every constituent or only after pooling, optional Fourier features, parameters by
concatenation or FiLM. The jet variables (and concatenated parameters) always also reach the
head, so a jet without constituents is still scored by its own variables; a model without an
``encoder`` (or inputs without constituent collections) is a dense net on the jet variables.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hepsnake.data.loader import InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.models.encoders import build_encoder, masked
from hepsnake.models.film import FiLM
from hepsnake.models.layers import Dense, Fourier, InputNorm
from hepsnake.models.pooling import build_pooling

DENSE_WIDTH = 64  # default head width of a model without ``dim`` (a dense net)


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
        self.collections = spec.constituents if "encoder" in cfg else []
        self.jet_mode = cfg.get("jet_inputs", "constituents")
        self.norms = nn.ModuleDict({c: InputNorm(v, norm[c]) for c, v in spec.variables.items()})
        self.param_norm = InputNorm(spec.parameters, param_norm) if spec.parameters else None
        film_cfg = cfg.get("film") if spec.parameters else None
        if film_cfg and not self.collections:
            raise HepsnakeError("model: film", "FiLM needs a constituent collection to modulate")
        concat_params = bool(spec.parameters) and not film_cfg
        n_global = len(spec.variables.get("jets", [])) + (
            len(spec.parameters) if concat_params else 0
        )
        if not (n_global or self.collections):
            raise HepsnakeError("inputs: variables", "the model has no input variables")
        self.concat_params = concat_params
        fourier = cfg.get("fourier")
        self.fourier = Fourier(fourier["n_freqs"], fourier.get("base", 2.0)) if fourier else None

        def width(n: int) -> int:
            return self.fourier.out_features(n) if self.fourier else n

        dim = cfg.get("dim", DENSE_WIDTH)  # a dense model may leave it out
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
        self.encoder = build_encoder(cfg["encoder"], dim) if self.collections else None
        self.film = (
            FiLM(len(spec.parameters), dim, film_cfg, self.encoder.n_layers) if film_cfg else None
        )
        self.pool = build_pooling(cfg["pooling"], dim) if self.collections else None
        head_in = (dim if self.collections else 0) + (width(n_global) if n_global else 0)
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

    def pooled(
        self,
        batch: dict[str, torch.Tensor],
        glob: torch.Tensor | None,
        params: torch.Tensor | None,
    ) -> torch.Tensor:
        """The constituents embedded, encoded and pooled into one (B, dim) vector per jet."""
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
        return x

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``logits`` (B, classes) and, with an aux head, ``aux`` (B,)."""
        glob = self.global_features(batch)
        params = self.param_norm(batch["params"]) if self.film is not None else None
        parts = [self.pooled(batch, glob, params)] if self.collections else []
        if glob is not None:
            parts.append(self.fourier(glob) if self.fourier is not None else glob)
        x = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        out = {"logits": self.head(x)}
        if self.aux is not None:
            out["aux"] = self.aux(x).squeeze(-1)
        return out


def input_spec(
    inputs: Mapping[str, Any], model_cfg: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> InputSpec:
    """What a model reads: the configured inputs and parameters; a model without an
    ``encoder`` reads only the jet variables (its loader skips the constituent datasets)."""
    spec = InputSpec.from_config(dict(inputs), list(parameters["names"]) if parameters else None)
    if "encoder" in model_cfg:
        return spec
    jets = {k: v for k, v in spec.variables.items() if k == "jets"}
    return dataclasses.replace(spec, variables=jets)


def param_norm(parameters: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Mean/std of each parameter over its training values (parameters enter normalised)."""
    out = {}
    for name in parameters["names"]:
        values = torch.tensor(parameters["train"][name], dtype=torch.float64)
        std = float(values.std(unbiased=False)) if len(values) > 1 else 1.0
        out[name] = {"mean": float(values.mean()), "std": std or 1.0}
    return out


def build_tagger(hparams: Mapping[str, Any]) -> tuple[InputSpec, Tagger]:
    """The input spec and (untrained) tagger of a checkpoint's hyperparameters."""
    parameters = hparams.get("parameters")
    spec = input_spec(hparams["inputs"], hparams["model_cfg"], parameters)
    tagger = Tagger(
        hparams["model_cfg"],
        spec,
        hparams["norm"],
        len(hparams["class_names"]),
        param_norm(parameters) if parameters else None,
    )
    return spec, tagger
