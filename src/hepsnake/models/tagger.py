"""The tagger: input norm → init nets → encoder → pooling → heads, assembled from config.

A new architecture is a model YAML change: a registered encoder and pooling
(:mod:`hepsnake.models.registry`), the tasks whose heads read the trunk, jet variables joined to
every constituent or only after pooling, optional Fourier features, parameters by
concatenation or FiLM. The jet variables (and concatenated parameters) always also reach the
head, so a jet without constituents is still scored by its own variables; a model without an
``encoder`` (or inputs without constituent collections) is a dense net on the jet variables.
"""

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hepsnake.config.contracts import Inputs, ModelSpec, Parameters, Trained
from hepsnake.data.loader import InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.models import registry
from hepsnake.models.edges import EdgeFeatures, column
from hepsnake.models.encoders import masked
from hepsnake.models.film import FiLM
from hepsnake.models.layers import Dense, Fourier, InputNorm
from hepsnake.models.tasks import build_tasks
from hepsnake.models.tasks.base import Context, Trunk, TrunkOutput
from hepsnake.models.tasks.jet_classification import JetClassification


class Tagger(nn.Module):
    """Tagger over heterogeneous constituent collections with one head per task."""

    def __init__(
        self,
        cfg: ModelSpec,
        spec: InputSpec,
        norm: dict[str, dict[str, Any]],
        context: Context,
        param_norm: dict[str, dict[str, float]] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.collections = spec.constituents if cfg.encoder is not None else []
        self.jet_mode = cfg.jet_inputs
        self.norms = nn.ModuleDict({c: InputNorm(v, norm[c]) for c, v in spec.variables.items()})
        self.param_norm = InputNorm(spec.parameters, param_norm) if spec.parameters else None
        film_cfg = cfg.film if spec.parameters else None
        if film_cfg and not self.collections:
            raise HepsnakeError("model: film", "FiLM needs a constituent collection to modulate")
        concat_params = bool(spec.parameters) and not film_cfg
        n_global = len(spec.variables.get("jets", [])) + (
            len(spec.parameters) if concat_params else 0
        )
        if not (n_global or self.collections):
            raise HepsnakeError("inputs: variables", "the model has no input variables")
        self.concat_params = concat_params
        fourier = cfg.fourier
        self.fourier = Fourier(fourier.n_freqs, fourier.base) if fourier else None

        def width(n: int) -> int:
            return self.fourier.out_features(n) if self.fourier else n

        dim = cfg.dim
        to_constituents = n_global if self.jet_mode == "constituents" else 0
        self.init_nets = nn.ModuleDict(
            {
                c: Dense(
                    width(len(spec.variables[c]) + to_constituents),
                    list(cfg.init_hidden(c)),
                    dim,
                    final_act=cfg.init_final_activation(c),
                )
                for c in self.collections
            }
        )
        edges = cfg.edge_features if self.collections else None
        fields = {c: spec.variables[c] for c in self.collections}
        self.edges = EdgeFeatures(edges, fields) if edges else None
        self.encoder = None
        if self.collections:
            self.encoder = registry.build("encoder", cfg.encoder, dim=dim, **self.edge_dim(cfg))
        names = getattr(self.encoder, "coordinates", [])
        where = "model: encoder: space"
        self.coordinates = {c: [column(v, n, c, where) for n in names] for c, v in fields.items()}
        self.film = (
            FiLM(len(spec.parameters), dim, film_cfg, self.encoder.n_layers) if film_cfg else None
        )
        self.pool = registry.build("pooling", cfg.pooling, dim=dim) if self.collections else None
        head_in = (dim if self.collections else 0) + (width(n_global) if n_global else 0)
        trunk = Trunk(head_in, dim, tuple(self.collections), cfg.head_hidden, cfg.head.dropout)
        self.tasks = build_tasks(cfg.tasks, context)
        for task in self.tasks:
            needs = getattr(task, "collection", None)
            if needs is not None and needs not in self.collections:
                raise HepsnakeError(
                    f"model: tasks: {task.name}", f"collection {needs!r} is not a model input"
                )
        self.heads = nn.ModuleDict({t.name: t.head(trunk) for t in self.tasks})

    @property
    def classification(self) -> JetClassification:
        """The jet classification task (every model has one): whose class probabilities
        adversarial training, the validation AUC and the export benchmark read."""
        return next(t for t in self.tasks if isinstance(t, JetClassification))

    def edge_dim(self, cfg: ModelSpec) -> dict[str, int]:
        """``edge_dim`` for an encoder that takes the model's edge features (none without)."""
        if self.edges is None or cfg.encoder is None:
            return {}
        encoder = cfg.encoder.type
        if not getattr(
            registry.lookup("encoder", encoder, "model: encoder").cls(), "takes_edges", False
        ):
            raise HepsnakeError(
                "model: edge_features", f"encoder {encoder!r} takes no edge features"
            )
        return {"edge_dim": self.edges.n_features}

    def global_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        parts = []
        if "jets" in self.norms:
            parts.append(self.norms["jets"](batch["jets"]))
        if self.concat_params:
            parts.append(self.param_norm(batch["params"]))
        return torch.cat(parts, dim=-1) if parts else None

    def graph(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the encoder reads beside the embedded constituents, from the raw inputs:
        ``edges`` (B, N, N, F) if the model has edge features, ``coordinates`` (B, N, ·)
        (padding 0) if the encoder names some (a static graph)."""
        graph = {}
        masks = {c: batch[f"{c}_mask"] for c in self.collections}
        if self.edges is not None:
            graph["edges"] = self.edges(batch, masks)
        if any(self.coordinates.values()):
            picked = [masked(batch[c][..., i], masks[c]) for c, i in self.coordinates.items()]
            graph["coordinates"] = torch.cat(picked, dim=1)
        return graph

    def pooled(
        self,
        batch: dict[str, torch.Tensor],
        glob: torch.Tensor | None,
        params: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The constituents embedded, encoded and pooled into one (B, dim) vector per jet,
        and per collection the encoded constituents (B, n, dim) and their masks."""
        embedded, masks = [], []
        for c in self.collections:
            mask = batch[f"{c}_mask"]
            x = masked(self.norms[c](batch[c]), mask)  # padding is 0 before any MatMul
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

        encoded = self.encoder(x, mask, modulate, **self.graph(batch))
        registers = getattr(self.encoder, "n_registers", 0)  # returned after the constituents
        x = self.pool(encoded, F.pad(mask, (0, registers), value=True) if registers else mask)
        encoded = encoded[:, : mask.shape[1]]
        if params is not None:
            x = self.film(x, params, "pooled")
        sizes = [m.shape[1] for m in masks]
        per_collection = dict(zip(self.collections, encoded.split(sizes, dim=1), strict=True))
        return x, per_collection, dict(zip(self.collections, masks, strict=True))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each task's raw output by its ``output_key``: (B, ·) for a jet-level task, (B, n[, ·])
        for a constituent-level one."""
        glob = self.global_features(batch)
        params = self.param_norm(batch["params"]) if self.film is not None else None
        parts, constituents, masks = [], {}, {}
        if self.collections:
            pooled, constituents, masks = self.pooled(batch, glob, params)
            parts.append(pooled)
        if glob is not None:
            parts.append(self.fourier(glob) if self.fourier is not None else glob)
        x = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        trunk = TrunkOutput(x, constituents, masks)
        return {t.output_key: self.heads[t.name](trunk) for t in self.tasks}


def input_spec(inputs: Inputs, model_cfg: ModelSpec, parameters: Parameters | None) -> InputSpec:
    """What a model reads: the configured inputs and parameters; a model without an
    ``encoder`` reads only the jet variables (its loader skips the constituent datasets)."""
    spec = InputSpec.from_config(inputs, parameters.names if parameters else None)
    if model_cfg.encoder is not None:
        return spec
    jets = {k: v for k, v in spec.variables.items() if k == "jets"}
    return dataclasses.replace(spec, variables=jets)


def param_norm(parameters: Parameters) -> dict[str, dict[str, float]]:
    """Mean/std of each parameter over its training values (parameters enter normalised)."""
    out = {}
    for name in parameters.names:
        values = torch.tensor(parameters.train[name], dtype=torch.float64)
        std = float(values.std(unbiased=False)) if len(values) > 1 else 1.0
        out[name] = {"mean": float(values.mean()), "std": std or 1.0}
    return out


def build_tagger(trained: Trained) -> tuple[InputSpec, Tagger]:
    """The input spec and (untrained) tagger of a trained model's record (a checkpoint's
    hyperparameters, :class:`~hepsnake.config.contracts.Trained`)."""
    parameters = trained.parameters
    spec = input_spec(trained.inputs, trained.model_cfg, parameters)
    context = Context(list(trained.class_names), list(trained.class_weights or []))
    tagger = Tagger(
        trained.model_cfg,
        spec,
        trained.norm,
        context,
        param_norm(parameters) if parameters else None,
    )
    return spec, tagger
