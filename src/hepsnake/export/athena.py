"""The Salt/Athena ONNX layout of a tagger: one jet per call, no batch axis, no masks.

Inputs (in this order): ``jet_features`` (1, jet variables + parameters) float32, where a
parameterised model's parameters follow the jet variables (Athena reads them, like the jet
variables, as decorations of the jet), then per constituent collection
``{collection without its plural s}_features`` (n, variables) float32 (``tracks`` gives
``track_features``, as Athena's ``GNNDataLoader`` names them), n dynamic and possibly 0.
Outputs: every task's outputs, the jet classification's first (one float32 scalar
``{model}_p{class}`` per class; a jet-level output a scalar, a constituent-level one (n,) or
(n, n) over its collection's constituents), from :func:`hepsnake.export.onnx.output_names`
with the model name reduced to letters and digits (Athena's ``SaltModel`` takes the model
name from the output names up to their first ``_``).
Metadata: Salt's ``gnn_config`` JSON; the doc string is the model name. The norm dict stays
inside the graph, so every offset is 0 and every scale 1.
"""

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from hepsnake.data.loader import Batch
from hepsnake.errors import HepsnakeError
from hepsnake.export.onnx import (
    OnnxTagger,
    output_names,
    outputs,
    quiet,
    save_checked,
    session,
    traced,
)
from hepsnake.models.tagger import Tagger
from hepsnake.paths import EXPORT_FILES

FILE = EXPORT_FILES["athena"]
ONNX_MODEL_VERSION = "v1"  # the SaltModelVersion Athena reads from gnn_config
JET_INPUT = "jet_features"
JET_SEQUENCE_NAME = "jet_var"  # Salt's name of the jet variables in gnn_config["inputs"]
TOLERANCE = 1e-5  # per-jet Athena-layout run vs the batched model, max |Δp|


def model_name(name: str) -> str:
    """``name`` with every character but letters and digits removed (no ``_`` or ``-``)."""
    return re.sub("[^A-Za-z0-9]", "", name)


def sequence_input(collection: str) -> str:
    """The Athena input name of a constituent collection: ``tracks`` → ``track_features``."""
    return f"{collection.removesuffix('s')}_features"


def input_names(tagger: Tagger) -> list[str]:
    """The inputs of the Athena-layout graph of ``tagger``, in graph order."""
    has_jet = "jets" in tagger.norms or tagger.param_norm is not None
    names = [JET_INPUT] if has_jet else []
    names += [sequence_input(c) for c in tagger.collections]
    if len(set(names)) < len(names):
        raise HepsnakeError(
            "inputs: variables", f"collections {tagger.collections} give clashing Athena inputs"
        )
    return names


class AthenaTagger(nn.Module):
    """:class:`OnnxTagger` over one jet: adds the batch axis and an all-true mask inside the
    graph, splits the parameters off ``jet_features`` and drops the batch axis of every
    output (per-class scalars first)."""

    def __init__(self, tagger: Tagger) -> None:
        super().__init__()
        self.inner = OnnxTagger(tagger)
        self.n_jet = len(tagger.spec.variables["jets"]) if "jets" in tagger.norms else 0
        self.inputs = {c: sequence_input(c) for c in tagger.collections}

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        batch: dict[str, torch.Tensor] = {}
        if self.inner.has_jets:
            batch["jets_data"] = inputs[JET_INPUT][:, : self.n_jet]
        if self.inner.has_params:
            batch["params_data"] = inputs[JET_INPUT][:, self.n_jet :]
        for c, name in self.inputs.items():
            x = inputs[name].unsqueeze(0)
            batch[f"{c}_data"] = x
            batch[f"{c}_mask"] = torch.ones_like(x[..., 0], dtype=torch.bool)
        return tuple(p.squeeze(0) for p in self.inner(batch))


def jet_variables(tagger: Tagger) -> list[str]:
    """The variables of ``jet_features``: the jet variables, then the parameters."""
    jets = tagger.spec.variables["jets"] if "jets" in tagger.norms else []
    return [*jets, *(tagger.spec.parameters if tagger.param_norm is not None else [])]


def example_inputs(tagger: Tagger) -> dict[str, torch.Tensor]:
    """One random jet with constituent counts of distinct sizes (none 0 or 1)."""
    gen = torch.Generator().manual_seed(0)
    names = input_names(tagger)
    inputs = {}
    if names[0] == JET_INPUT:
        inputs[JET_INPUT] = torch.rand(1, len(jet_variables(tagger)), generator=gen)
    for i, c in enumerate(tagger.collections):
        inputs[sequence_input(c)] = torch.rand(4 + i, len(tagger.spec.variables[c]), generator=gen)
    return inputs


def gnn_config(tagger: Tagger, name: str, outputs: list[str], extra: dict[str, Any]) -> str:
    """Salt's ``gnn_config`` JSON: version, model and output names, the variables of every
    input (offset 0, scale 1: normalisation is in the graph), plus ``extra`` keys."""

    def variables(names: list[str]) -> list[dict[str, Any]]:
        return [{"name": v, "offset": 0.0, "scale": 1.0} for v in names]

    has_jet = input_names(tagger)[0] == JET_INPUT
    config = {
        "onnx_model_version": ONNX_MODEL_VERSION,
        "model_name": name,
        "output_names": outputs,
        "inputs": (
            [{"name": JET_SEQUENCE_NAME, "variables": variables(jet_variables(tagger))}]
            if has_jet
            else []
        ),
        "input_sequences": [
            {"name": c, "variables": variables(tagger.spec.variables[c])}
            for c in tagger.collections
        ],
        "layers": [],
        "nodes": [],
    }
    return json.dumps(config | extra)


def export_athena(
    tagger: Tagger, path: str | Path, model: str, provenance: dict[str, Any], opset: int = 18
) -> None:
    """Write the Athena-layout graph of ``tagger`` at ``path``, checked, with ``gnn_config``
    (``provenance`` under its key ``hepsnake``) and the model name as doc string."""
    name = model_name(model)
    names = output_names(name, tagger.tasks)
    shapes = {
        sequence_input(c): {0: torch.export.Dim(f"n_{model_name(c)}")} for c in tagger.collections
    }
    with quiet():
        proto = traced(AthenaTagger(tagger), example_inputs(tagger), names, opset, shapes)
    config = gnn_config(tagger, name, names, {"hepsnake": provenance})
    save_checked(proto, path, {"gnn_config": config}, doc_string=name)


def read_gnn_config(path: str | Path) -> dict[str, Any]:
    """The ``gnn_config`` metadata of an Athena-layout file."""
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    return json.loads(props["gnn_config"])


def jet_feeds(batch: Batch, i: int, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Athena-layout inputs of jet ``i`` of a loader batch, with its first ``counts[c]``
    real constituents of each collection."""
    feeds = {}
    jet = [batch[k][i : i + 1] for k in ("jets", "params") if k in batch]
    if jet:
        feeds[JET_INPUT] = torch.cat(jet, -1).numpy()
    for c, n in counts.items():
        feeds[sequence_input(c)] = batch[c][i][batch[f"{c}_mask"][i]][:n].numpy()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}


def as_batch(batch: Batch, i: int, counts: dict[str, int]) -> Batch:
    """Jet ``i`` of ``batch`` as a one-jet loader batch with the same constituents as
    :func:`jet_feeds` (at least one slot per collection, padded slots masked)."""
    out = {k: batch[k][i : i + 1] for k in ("jets", "params", "label") if k in batch}
    for c, n in counts.items():
        real = batch[c][i][batch[f"{c}_mask"][i]][:n]
        width = max(n, 1)
        out[c] = torch.zeros(1, width, real.shape[-1])
        out[c][0, :n] = real
        out[f"{c}_mask"] = torch.arange(width).unsqueeze(0) < n
    return out


def validate_athena(
    path: str | Path, batched: str | Path, batches: list[Batch], edge: Batch, name: str
) -> dict[str, Any]:
    """Per-jet runs of the Athena-layout file vs the batched ``model.onnx`` on the same jets,
    output by output (a constituent-level one over the jet's real constituents).

    The edge jets (every slot full) are run with 0, 1, ... up to all their constituents, the
    first real test jets with their own. Raises :class:`HepsnakeError` (naming ``name``)
    beyond :data:`TOLERANCE`, on a non-finite output or on an output of the wrong shape.
    """
    athena, ref = session(path), session(batched)
    collections = [k.removesuffix("_mask") for k in edge if k.endswith("_mask")]
    cases: list[tuple[Batch, int, dict[str, int]]] = []
    widest = max((edge[c].shape[1] for c in collections), default=0)
    full = [
        i for i in range(len(edge["label"])) if all(edge[f"{c}_mask"][i].all() for c in collections)
    ]
    for i in full[:2] or [0]:
        for k in range(widest + 1):
            counts = {c: min(k, int(edge[f"{c}_mask"][i].sum())) for c in collections}
            cases.append((edge, i, counts))
    first = batches[0]
    for i in range(min(50, len(first["label"]))):
        counts = {c: int(first[f"{c}_mask"][i].sum()) for c in collections}
        cases.append((first, i, counts))
    # per output, the batched model's axes after the batch axis (``n_{c}``: a collection's)
    axes = {o.name: [str(d).removeprefix("n_") for d in o.shape[1:]] for o in ref.get_outputs()}
    diffs, seen = dict.fromkeys(axes, 0.0), set()
    for batch, i, counts in cases:
        per_jet = athena.run(None, jet_feeds(batch, i, counts))
        batched = outputs(ref, as_batch(batch, i, counts))
        for (output, dims), got, one in zip(axes.items(), per_jet, batched, strict=True):
            # as_batch puts the jet's constituents first, in at least one slot each
            expected = one[0][tuple(slice(0, counts.get(d)) for d in dims)]
            if got.shape != expected.shape:
                raise HepsnakeError(
                    name, f"output '{output}' has shape {got.shape}, not {expected.shape}"
                )
            if not np.isfinite(got).all():
                raise HepsnakeError(
                    name, f"non-finite '{output}' for a jet with {counts} constituents"
                )
            diff = float(np.max(np.abs(got - expected), initial=0.0))
            diffs[output] = max(diffs[output], diff)
        seen.update(counts.values())
    worst = max(diffs.values())
    if not worst <= TOLERANCE:
        raise HepsnakeError(
            name,
            f"per-jet outputs differ from the batched model by {worst:.3g} "
            f"(tolerance {TOLERANCE:g}, in '{max(diffs, key=diffs.__getitem__)}') "
            f"on {len(cases)} jets",
        )
    return {
        "n_jets": len(cases),
        "constituent_counts": sorted(seen),
        "max_abs_diff_vs_batched": worst,
        "max_abs_diff_vs_batched_per_output": diffs,
        "tolerance": TOLERANCE,
        "int8": "not made: Athena's loader runs the fp32 Salt layout",
        "passed": True,
    }
