"""Generate toy jets from :mod:`hepsnake.simulate.densities` and write them as a ROOT TTree.

Besides the jet truth (``truth_logp_*``), every track and cluster gets ``truth_origin``,
``truth_vertex`` and its exact origin posteriors (``truth_p_pileup_sig``, ``truth_p_llp_sig``,
``truth_p_pileup_bkg``), drawn from their own stream after the physics, so every jet and
constituent variable (and so the jet likelihoods) is what it was without them.
"""

import zlib
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from scipy.special import logsumexp

from hepsnake.config.contracts import SimulateContract
from hepsnake.io.atomic import atomic_path
from hepsnake.io.chunks import Jagged
from hepsnake.simulate.densities import (
    ORIGIN_GROUPS,
    ORIGINS,
    P_TWO_VERTICES,
    STORED_POSTERIORS,
    ClassModel,
    class_model,
    origin_field,
    origin_group,
    origin_logits,
    origin_posterior,
    two_vertex_side,
)

TREE = "jets"
COLLECTIONS = {"tracks": "track", "clusters": "cluster"}


@dataclass
class ToyJets:
    """Generated jets: jet columns and jagged ``tracks``/``clusters``."""

    jets: dict[str, np.ndarray]
    collections: dict[str, Jagged]


def sample_seed(seed: int, name: str) -> np.random.SeedSequence:
    """A per-sample stream from the global seed, stable under adding or removing samples."""
    return np.random.SeedSequence([seed, zlib.crc32(name.encode())])


def draw(model: ClassModel, n_jets: int, rng: np.random.Generator) -> ToyJets:
    """Draw ``n_jets`` jets from ``model``."""
    jets = {k: d.rvs(size=n_jets, random_state=rng) for k, d in model.jets.items()}
    collections = {}
    for name, n_dist, fields in (
        ("tracks", model.n_tracks, model.tracks),
        ("clusters", model.n_clusters, model.clusters),
    ):
        counts = n_dist.rvs(n_jets, rng)
        total = int(counts.sum())
        values = {k: d.rvs(size=total, random_state=rng) for k, d in fields.items()}
        collections[name] = Jagged(counts.astype(np.int64), values)
    return ToyJets(jets, collections)


def log_likelihood(model: ClassModel, toy: ToyJets) -> np.ndarray:
    """Exact log-density of every jet under ``model``: jet terms, multiplicities, constituents."""
    logp = sum(d.logpdf(toy.jets[k]) for k, d in model.jets.items())
    for name, n_dist, fields in (
        ("tracks", model.n_tracks, model.tracks),
        ("clusters", model.n_clusters, model.clusters),
    ):
        coll = toy.collections[name]
        per_constituent = sum(d.logpdf(coll.fields[k]) for k, d in fields.items())
        jet_of = np.repeat(np.arange(len(coll.counts)), coll.counts)
        logp = logp + n_dist.logpmf(coll.counts)
        logp = logp + np.bincount(jet_of, weights=per_constituent, minlength=len(coll.counts))
    return np.asarray(logp, dtype=np.float64)


def draw_origins(
    toy: ToyJets, process: str, rng: np.random.Generator
) -> dict[str, dict[str, np.ndarray]]:
    """Per collection, the constituent truth of ``toy`` (jets of ``process``).

    ``truth_origin`` (int8, index into :data:`ORIGINS`) is drawn from the origin posterior of
    the jet's group given the constituent's own variables (Gumbel-max on the logits).
    ``truth_vertex`` (int8): -1 pile-up/fake, 0 the primary vertex, 1 or 2 a displaced vertex:
    a signal jet has two with probability :data:`P_TWO_VERTICES`, and then an LLP constituent is
    from vertex 2 with probability :func:`two_vertex_side` of its dphi, else from vertex 1.
    ``truth_p_{origin}_{group}`` (float64) for :data:`STORED_POSTERIORS`: the exact posteriors.
    """
    group = origin_group(process)
    n_jets = len(next(iter(toy.jets.values())))
    two_vertices = rng.random(n_jets) < P_TWO_VERTICES if group == "sig" else np.zeros(n_jets, bool)
    out = {}
    for name, coll in toy.collections.items():
        logits = origin_logits(name, coll.fields, group)
        origin = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
        jet_of = np.repeat(np.arange(n_jets), coll.counts)
        second = two_vertices[jet_of] & (
            rng.random(len(origin)) < two_vertex_side(coll.fields["dphi"])
        )
        llp, prompt = ORIGINS.index("llp"), ORIGINS.index("prompt")
        vertex = np.where(origin == llp, 1 + second, np.where(origin == prompt, 0, -1))
        fields = {"truth_origin": origin.astype(np.int8), "truth_vertex": vertex.astype(np.int8)}
        posterior = {g: origin_posterior(name, coll.fields, g) for g in ORIGIN_GROUPS}
        for o, g in STORED_POSTERIORS:
            fields[origin_field(o, g)] = posterior[g][:, ORIGINS.index(o)]
        out[name] = fields
    return out


def truth_columns(
    toy: ToyJets, train_masses: list[float], all_masses: list[float]
) -> dict[str, np.ndarray]:
    """``truth_logp_{qcd,sig,bib}`` and ``truth_logp_sig_mS{m}`` for every mass in the grid.

    ``truth_logp_sig`` is the signal-class density: the equal mixture of the training masses.
    """
    per_mass = {m: log_likelihood(class_model("sig", m), toy) for m in all_masses}
    cols = {
        "truth_logp_qcd": log_likelihood(class_model("qcd"), toy),
        "truth_logp_sig": logsumexp([per_mass[m] for m in train_masses], axis=0)
        - np.log(len(train_masses)),
        "truth_logp_bib": log_likelihood(class_model("bib"), toy),
    }
    cols.update({f"truth_logp_sig_mS{m:g}": v for m, v in per_mass.items()})
    return cols


def event_numbers(n_jets: int, rng: np.random.Generator) -> np.ndarray:
    """Group jets into events of 1-3 jets and number the events from 1."""
    sizes = rng.choice([1, 2, 3], size=n_jets, p=[0.5, 0.3, 0.2])
    events = np.repeat(np.arange(1, n_jets + 1, dtype=np.int64), sizes)[:n_jets]
    return events


def simulate(
    name: str,
    process: str,
    n_jets: int,
    seed: int,
    train_masses: list[float],
    all_masses: list[float],
    mass: float | None = None,
    mismodel: bool = False,
    is_data: bool = False,
) -> dict[str, np.ndarray | ak.Array]:
    """Generate sample ``name`` and return the TTree branches (jagged ones as awkward records)."""
    stream = sample_seed(seed, name)
    rng = np.random.default_rng(stream)
    model = class_model(process, mass, mismodel)
    toy = draw(model, n_jets, rng)
    origins = draw_origins(toy, process, np.random.default_rng(stream.spawn(1)[0]))
    branches: dict[str, np.ndarray | ak.Array] = {
        f"jet_{k}": v.astype(np.float32) for k, v in toy.jets.items()
    }
    branches["eventNumber"] = event_numbers(n_jets, rng)
    weights = np.ones(n_jets) if is_data else rng.uniform(0.5, 1.5, size=n_jets)
    branches["mcEventWeight"] = weights.astype(np.float32)
    if mass is not None:
        branches["mS"] = np.full(n_jets, mass, dtype=np.float32)
    for key, value in truth_columns(toy, train_masses, all_masses).items():
        branches[key] = value
    for coll, prefix in COLLECTIONS.items():
        jag = toy.collections[coll]
        fields = jag.fields | origins[coll]
        branches[prefix] = ak.zip(
            {
                k: ak.unflatten(v.astype(np.float32) if v.dtype.kind == "f" else v, jag.counts)
                for k, v in fields.items()
            }
        )
    return branches


def write_root(
    branches: dict[str, np.ndarray | ak.Array], output: str | Path, tree: str = TREE
) -> None:
    """Write ``branches`` as TTree ``tree`` (uproot ``mktree``: a jagged record ``x`` becomes
    branches ``x_field`` with counter ``nx``), atomically."""
    types = {
        k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()
    }
    with atomic_path(output) as tmp, uproot.recreate(tmp) as f:
        f.mktree(tree, types)
        f[tree].extend(branches)


def simulate_sample(contract: SimulateContract, output: str | Path) -> int:
    """The ``simulate`` stage: write the contract's toy sample to ``output``."""
    sample = contract.sample
    train = list(contract.train_masses)
    branches = simulate(
        contract.name,
        sample.process,
        sample.n_jets,
        contract.seed,
        train_masses=train,
        all_masses=sorted({*train, *contract.unseen_masses}),
        mass=sample.mS,
        mismodel=sample.mismodel,
        is_data=sample.data,
    )
    write_root(branches, output)
    return sample.n_jets
