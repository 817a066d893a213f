"""The toy's per-constituent origin task: Bayes-optimal AUC from the truth fields, and how close a
small set network (per-constituent MLP with a pooled jet context) gets.

Usage: ``python benchmarks/constituent_truth.py [--scale 0.25] [--epochs 30] [--threads 2]``
(``--smoke``: 1 % of the sizes, one epoch; a test runs it to check that the script runs).
Samples: the default config's training mix (qcd, bib, sig at the training masses, its class
fractions), ``--scale`` of its sizes; 80 % train, 20 % test. Prints, per collection and origin,
the Bayes AUC (one origin vs the rest) of :func:`bayes_constituent_score` and, knowing the jet's
class, of the group law alone; then the network's test AUC per origin next to the Bayes AUC on the
same constituents.
"""

import argparse

import awkward as ak
import numpy as np
import torch
from _common import parse_args, shipped_config
from sklearn.metrics import roc_auc_score
from torch import nn

from hepsnake.simulate.densities import (
    ORIGINS,
    STORED_POSTERIORS,
    bayes_constituent_score,
    group_posterior,
    origin_field,
)
from hepsnake.simulate.toy import COLLECTIONS, simulate

INPUTS = {
    "tracks": ["pt", "deta", "dphi", "d0", "z0"],
    "clusters": ["e", "f_em", "time", "deta", "dphi"],
}
JET_INPUTS = ["pt", "eta", "log_ratio", "time", "width"]
SLOTS = {"tracks": 40, "clusters": 30}


def default_mix(scale: float) -> list[tuple[dict, str]]:
    """The default config's training samples (``--scale`` of their sizes), with their class."""
    sim = shipped_config()["simulate"]
    grid = {"train_masses": sim["masses"]["train"], "all_masses": sim["masses"]["train"]}
    mix = []
    for name in ("qcd", "bib", *(f"sig_mS{m:g}" for m in sim["masses"]["train"])):
        spec = sim["samples"][name]
        n = int(spec["n_jets"] * scale)
        branches = simulate(name, spec["process"], n, sim["seed"], mass=spec.get("mS"), **grid)
        mix.append((branches, spec["process"]))
    return mix


def padded(branches: dict, coll: str, fields: list[str]) -> np.ndarray:
    """(N, slots, len(fields)) float64, zero padded."""
    rec = branches[COLLECTIONS[coll]]
    cols = [ak.fill_none(ak.pad_none(rec[f], SLOTS[coll], clip=True), 0) for f in fields]
    return np.stack([ak.to_numpy(c).astype(np.float64) for c in cols], axis=-1)


def tables(mix: list[tuple[dict, str]]) -> dict[str, np.ndarray]:
    """Padded inputs, masks, origins and the Bayes scores of every jet of ``mix``."""
    classes = [p for _, p in mix]
    n = {c: sum(len(b["jet_pt"]) for b, p in mix if p == c) for c in set(classes)}
    priors = {c: v / sum(n.values()) for c, v in n.items()}
    out = {
        "jets": np.concatenate([np.stack([b[f"jet_{v}"] for v in JET_INPUTS], 1) for b, _ in mix])
    }
    jet_logp = {c: np.concatenate([b[f"truth_logp_{c}"] for b, _ in mix]) for c in n}
    is_sig = np.concatenate([np.full(len(b["jet_pt"]), p == "sig") for b, p in mix])
    for coll in INPUTS:

        def cat(fields: list[str], coll: str = coll) -> np.ndarray:
            return np.concatenate([padded(b, coll, fields) for b, _ in mix])

        out[coll] = cat(INPUTS[coll])
        out[f"{coll}_valid"] = np.concatenate(
            [
                ak.to_numpy(ak.num(b[COLLECTIONS[coll]]))[:, None] > np.arange(SLOTS[coll])
                for b, _ in mix
            ]
        )
        out[f"{coll}_origin"] = cat(["truth_origin"])[..., 0].astype(np.int64)
        fields = {
            origin_field(o, g): cat([origin_field(o, g)])[..., 0] for o, g in STORED_POSTERIORS
        }
        out[f"{coll}_bayes"] = bayes_constituent_score(fields, jet_logp, priors)
        p = {g: group_posterior(fields, g) for g in ("sig", "bkg")}
        out[f"{coll}_known"] = np.where(is_sig[:, None, None], p["sig"], p["bkg"])
    return out


class SetTagger(nn.Module):
    """Per-constituent encoders, a masked-mean jet context, a per-constituent origin head."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()

        def mlp(n_in: int, n_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, n_out), nn.ReLU()
            )

        self.enc = nn.ModuleDict({c: mlp(len(v), width) for c, v in INPUTS.items()})
        self.jet = mlp(len(JET_INPUTS) + 2, width)
        self.context = mlp(3 * width, width)
        self.head = nn.ModuleDict(
            {
                c: nn.Sequential(mlp(2 * width, width), nn.Linear(width, len(ORIGINS)))
                for c in INPUTS
            }
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb, pooled, counts = {}, [], []
        for c in INPUTS:
            mask = batch[f"{c}_valid"].unsqueeze(-1).float()
            emb[c] = self.enc[c](batch[c]) * mask
            n = mask.sum(1)
            pooled.append(emb[c].sum(1) / n.clamp(min=1))
            counts.append(torch.log1p(n))
        ctx = self.context(
            torch.cat([self.jet(torch.cat([batch["jets"], *counts], 1)), *pooled], 1)
        )
        return {
            c: self.head[c](
                torch.cat([emb[c], ctx.unsqueeze(1).expand(-1, emb[c].shape[1], -1)], -1)
            )
            for c in INPUTS
        }


def standardise(data: dict[str, np.ndarray], train: np.ndarray) -> dict[str, torch.Tensor]:
    """Inputs scaled by the training constituents' mean and std (pt, e as log); torch tensors."""
    out = {}
    for key in ("jets", *INPUTS):
        x = data[key].copy()
        if key == "jets":
            x[:, 0] = np.log(x[:, 0])
            ref = x[train]
        else:
            x[..., 0] = np.log(np.maximum(x[..., 0], 1e-3))
            ref = x[train][data[f"{key}_valid"][train]]
        x = (x - ref.mean(0)) / ref.std(0)
        if key != "jets":
            x[~data[f"{key}_valid"]] = 0
        out[key] = torch.tensor(x, dtype=torch.float32)
    for c in INPUTS:
        out[f"{c}_valid"] = torch.tensor(data[f"{c}_valid"])
        out[f"{c}_origin"] = torch.tensor(data[f"{c}_origin"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parse_args(parser, {"scale": 0.01, "epochs": 1, "threads": 1})
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = tables(default_mix(args.scale))
    for coll in INPUTS:
        v = data[f"{coll}_valid"]
        origin = data[f"{coll}_origin"][v]
        for k, name in enumerate(ORIGINS):
            bayes = roc_auc_score(origin == k, data[f"{coll}_bayes"][v][:, k])
            known = roc_auc_score(origin == k, data[f"{coll}_known"][v][:, k])
            print(
                f"{coll:8s} {name:6s} fraction {np.mean(origin == k):.3f}  Bayes AUC {bayes:.4f}"
                f"  (jet class known: {known:.4f})  {v.sum()} constituents"
            )
    n = len(data["jets"])
    order = np.random.default_rng(0).permutation(n)
    train = np.zeros(n, bool)
    train[order[: int(0.8 * n)]] = True
    t = standardise(data, train)
    model = SetTagger()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.epochs)
    idx = np.flatnonzero(train)
    for epoch in range(args.epochs):
        np.random.default_rng(epoch).shuffle(idx)
        for start in range(0, len(idx), 500):
            batch = {k: v[idx[start : start + 500]] for k, v in t.items()}
            out = model(batch)
            loss = sum(
                nn.functional.cross_entropy(
                    out[c][batch[f"{c}_valid"]], batch[f"{c}_origin"][batch[f"{c}_valid"]]
                )
                for c in INPUTS
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    test = np.flatnonzero(~train)
    with torch.no_grad():
        out = model({k: v[test] for k, v in t.items()})
    for coll in INPUTS:
        v = data[f"{coll}_valid"][test]
        origin = data[f"{coll}_origin"][test][v]
        score = torch.softmax(out[coll], -1).numpy()[v]
        for k, name in enumerate(ORIGINS):
            net = roc_auc_score(origin == k, score[:, k])
            bayes = roc_auc_score(origin == k, data[f"{coll}_bayes"][test][v][:, k])
            print(
                f"test {coll:8s} {name:6s} network AUC {net:.4f}  Bayes {bayes:.4f}"
                f"  gap {bayes - net:+.4f}"
            )


if __name__ == "__main__":
    main()
