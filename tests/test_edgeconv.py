"""EdgeConv (DGCNN) and edge features: the kNN graph written out, padding invariance, Salt's
pair features by hand, config errors, and ONNX fp32 equal to PyTorch."""

import math

import numpy as np
import pytest
import torch
from conftest import REPO, model_spec

from hepsnake.config import load_model
from hepsnake.data.loader import InputSpec
from hepsnake.errors import HepsnakeError
from hepsnake.export.onnx import export_onnx, run, session
from hepsnake.models.edgeconv import EdgeConv
from hepsnake.models.edges import EdgeFeatures, pair_features
from hepsnake.models.tagger import Tagger
from hepsnake.models.tasks.base import Context

VARIABLES = {
    "jets": ["pt", "eta"],
    "tracks": ["pt", "deta", "dphi", "d0"],
    "clusters": ["e", "deta", "dphi"],
}
EDGES = {"collection": "tracks", "pt": "pt", "eta": "deta", "phi": "dphi"}
MODELS = {
    "edgeconv_dynamic_max": {"type": "edgeconv", "layers": 2, "k": 3},
    "edgeconv_static_mean": {
        "type": "edgeconv",
        "k": 4,
        "aggregation": "mean",
        "space": ["deta", "dphi"],
    },
    "transformer_edges": {"type": "transformer", "layers": 2, "heads": 2},
    "gatv2_edges": {"type": "gatv2", "layers": 2, "heads": 2},
}


def edge_spec(block: dict):
    """A model's ``edge_features`` block, typed (defaults filled)."""
    return model_spec({"edge_features": block}).edge_features


def tagger(encoder: dict, seed: int = 0) -> Tagger:
    """A tiny tagger on toy-like inputs (norms: a transform on pt, plain elsewhere)."""
    torch.manual_seed(seed)
    norm = {c: {v: {"mean": 0.1, "std": 0.5} for v in vs} for c, vs in VARIABLES.items()}
    norm["tracks"]["pt"] = {"mean": 1.0, "std": 0.7, "transform": "log1p"}
    cfg = {"dim": 8, "encoder": encoder, "pooling": {"type": "attention"}}
    if encoder["type"] != "edgeconv":
        cfg["edge_features"] = EDGES
    return Tagger(
        model_spec(cfg), InputSpec(variables=VARIABLES), norm, Context(["a", "b", "c"])
    ).eval()


def batch(b: int, n_tracks: int, n_clusters: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random raw inputs; jet 0 has no constituents, jet 1 one track and one cluster."""
    gen = torch.Generator().manual_seed(seed)
    out = {"jets": torch.rand(b, 2, generator=gen)}
    for c, n in (("tracks", n_tracks), ("clusters", n_clusters)):
        x = torch.rand(b, n, len(VARIABLES[c]), generator=gen)
        x[..., 0] *= 50  # a pt in GeV
        mask = torch.rand(b, n, generator=gen) > 0.3
        mask[0], mask[1] = False, torch.arange(n) == 0
        out[c], out[f"{c}_mask"] = x, mask
    return out


def padded(data: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    """Garbage (huge, NaN) in every padded slot, plus ``extra`` more padded slots."""
    out = dict(data)
    for c in ("tracks", "clusters"):
        x, mask = data[c], data[f"{c}_mask"]
        b, n, f = x.shape
        garbage = torch.full((b, n + extra, f), 1e4)
        garbage[:, ::2, 1] = float("nan")
        out[c] = torch.cat([torch.where(mask.unsqueeze(-1), x, garbage[:, :n]), garbage[:, n:]], 1)
        out[f"{c}_mask"] = torch.cat([mask, torch.zeros(b, extra, dtype=torch.bool)], 1)
    return out


def test_layer_equals_knn_written_out():
    """One dynamic max layer equals, per jet, the k nearest other real constituents found by
    sorting their distances and the edge MLP's maximum over them (fewer where fewer exist)."""
    torch.manual_seed(0)
    encoder = EdgeConv(dim=6, layers=1, k=3).eval()
    x, mask = torch.randn(4, 7, 6), torch.rand(4, 7) > 0.3
    mask[0], mask[1] = False, torch.arange(7) < 3  # no constituent; fewer than k + 1
    layer = encoder.layers[0]
    expected = torch.zeros_like(x)
    for jet in range(4):
        real = x[jet, mask[jet]]
        for i, xi in enumerate(real):
            others = [j for j in range(len(real)) if j != i]
            near = sorted(others, key=lambda j: float((real[j] - xi).pow(2).sum()))[:3]
            pairs = torch.stack([torch.cat([xi, real[j] - xi]) for j in near]) if near else None
            agg = layer.mlp(pairs).amax(0) if near else torch.zeros(6)
            expected[jet, mask[jet].nonzero()[i, 0]] = layer.norm(xi + agg)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x, mask), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_padding_never_changes_outputs(name):
    model = tagger(MODELS[name])
    data = batch(16, 6, 5)
    with torch.no_grad():
        ref = model(data)["logits"]
        more = model(padded(data, 9))["logits"]
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(more, ref, atol=1e-6, rtol=1e-5)


def test_static_graph_follows_the_coordinates():
    """A static graph reads the raw deta/dphi of every collection: moving one real track
    in them changes its jet's outputs and no other jet's."""
    model = tagger(MODELS["edgeconv_static_mean"])
    assert model.coordinates == {"tracks": [1, 2], "clusters": [1, 2]}
    data = batch(16, 6, 5)
    moved = {k: v.clone() for k, v in data.items()}
    jet, track = 5, int(data["tracks_mask"][5].nonzero()[0, 0])
    moved["tracks"][jet, track, 1] += 3.0
    with torch.no_grad():
        ref, out = model(data)["logits"], model(moved)["logits"]
    assert not torch.allclose(out[jet], ref[jet])
    torch.testing.assert_close(out[:jet], ref[:jet])


def test_pair_features_by_hand():
    """Two tracks across the φ = ±π seam and one padded slot: ΔR, kt, z, the self loop."""
    pt = torch.tensor([[10.0, 30.0, 5.0]])
    eta = torch.tensor([[0.1, -0.2, 9.0]])
    phi = torch.tensor([[3.1, -3.1, 1.0]])
    valid = torch.tensor([[True, True, False]])
    out = pair_features(pt, eta, phi, valid)
    dr = math.hypot(0.3, 2 * math.pi - 6.2)
    expected = [math.log(dr), math.log(10 * dr), math.log(10 / 40), 0.0]
    torch.testing.assert_close(out[0, 0, 1], torch.tensor(expected))
    torch.testing.assert_close(out[0, 1, 0], torch.tensor(expected))
    assert out[0, 0, 0, 3] == 1 and out[0, 1, 1, 3] == 1
    assert not out[0, 2].any() and not out[0, :, 2].any()  # pairs with padding are 0
    assert pair_features(pt, eta, phi, valid, ["z", "dR"]).shape == (1, 3, 3, 2)


def test_edge_features_undo_a_log_pt_field_and_skip_other_collections():
    fields = {"clusters": ["e"], "tracks": ["log_pt", "deta", "dphi"]}
    edges = EdgeFeatures(edge_spec(EDGES | {"features": ["z"]}), fields)
    pt = torch.tensor([[[math.log1p(10.0), 0, 0], [math.log1p(30.0), 0.1, 0]]])
    raw = {"clusters": torch.ones(1, 2, 1), "tracks": pt}
    masks = {"clusters": torch.ones(1, 2, dtype=torch.bool), "tracks": torch.ones(1, 2, dtype=bool)}
    out = edges(raw, masks)
    assert out.shape == (1, 4, 4, 1) and not out[0, :2].any() and not out[0, :, :2].any()
    torch.testing.assert_close(out[0, 2, 3, 0], torch.tensor(math.log(0.25)))


def test_static_coordinates_must_be_inputs():
    with pytest.raises(HepsnakeError, match="model: encoder: space: 'clusters' inputs have no"):
        tagger(MODELS["edgeconv_static_mean"] | {"space": ["deta", "d0"]})


def test_edge_feature_errors_name_the_key():
    with pytest.raises(HepsnakeError, match="model: edge_features: 'tracks' inputs have no"):
        EdgeFeatures(edge_spec(EDGES | {"eta": "eta"}), {"tracks": VARIABLES["tracks"]})
    with pytest.raises(HepsnakeError, match="encoder 'deepsets' takes no edge features"):
        norm = {c: {v: {"mean": 0.0, "std": 1.0} for v in vs} for c, vs in VARIABLES.items()}
        cfg = {
            "dim": 8,
            "encoder": {"type": "deepsets"},
            "pooling": {"type": "sum"},
            "edge_features": EDGES,
        }
        Tagger(model_spec(cfg), InputSpec(variables=VARIABLES), norm, Context(["a", "b"]))


def test_edgeconv_options_are_checked(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "model: {dim: 8, encoder: {type: edgeconv, heads: 2}, pooling: {type: sum}}\n"
    )
    config = {"model_dir": str(tmp_path), "training_overrides": {}}
    with pytest.raises(
        HepsnakeError, match=r"bad.yaml: model/encoder/heads: .heads. was unexpected"
    ):
        load_model(config, "bad")
    shipped = load_model(
        {"model_dir": str(REPO / "config" / "models"), "training_overrides": {}}, "shc"
    )
    assert shipped["model"]["encoder"] == {
        "type": "edgeconv",
        "layers": 2,
        "k": 8,
        "aggregation": "max",
        "space": "embedding",
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_fp32_equals_pytorch_and_is_padding_invariant(name, tmp_path):
    """Exported with dynamic axes, run by ONNX Runtime at other sizes than traced: every
    output within 1e-4 of PyTorch, and unchanged by extra garbage padded slots."""
    model = tagger(MODELS[name])
    path = tmp_path / "model.onnx"
    export_onnx(model, path, "tiny", {})
    sess = session(path)
    for b, n_tracks, n_clusters in ((2, 2, 1), (9, 12, 7), (40, 30, 20)):
        data = batch(b, n_tracks, n_clusters, seed=b)
        with torch.no_grad():
            ref = model(data)["logits"].softmax(-1).numpy()
        out = run(sess, data)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
        np.testing.assert_allclose(run(sess, padded(data, 5)), out, atol=1e-6, rtol=0)
