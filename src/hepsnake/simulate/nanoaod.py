"""A NanoAOD-like flat sample: tree ``Events`` with per-event jagged ``Jet_*`` branches (FTAG
``Jet_hadronFlavour`` labels, a b-tag score, ``Jet_jetId``), muons and electrons attached to jets
by ``Jet_muonIdx1/2`` and ``Jet_electronIdx1/2``, an ``event`` number and NLO-like event weights
(``genWeight``: one magnitude, a share negative, as MadGraph5_aMC@NLO writes them).

For tests of what real MC brings (negative weights, a rare flavour): write it with
:func:`hepsnake.simulate.toy.write_root` as tree :data:`TREE`. b and c jets are heavier, carry
more soft leptons and a higher b-tag score than light jets, so there is something to learn.
"""

import awkward as ak
import numpy as np

TREE = "Events"
FLAVOURS = (0, 4, 5)  # light, c, b: Jet_hadronFlavour values
# per flavour: mean jet mass (GeV), probability of a soft muon and of a soft electron, and
# the Beta(a, b) of the b-tag score
MASS = {0: 8.0, 4: 10.0, 5: 13.0}
LEPTON = {0: 0.04, 4: 0.15, 5: 0.3}
BTAG = {0: (1.2, 3.5), 4: (1.8, 2.5), 5: (2.5, 1.5)}  # light jets pass a 70 % b WP at 10 %


def nanoaod_like(
    n_events: int,
    seed: int,
    fractions: dict[int, float],
    weight: float = 2.26e5,
    negative: float = 0.13,
    first_event: int = 1,
) -> dict[str, np.ndarray | ak.Array]:
    """The branches of ``n_events`` events of 2 to 6 jets whose flavours (0, 4, 5) are drawn
    with ``fractions``; ``genWeight`` is ``±weight``, negative with probability ``negative``."""
    rng = np.random.default_rng(seed)
    jets_per_event = rng.integers(2, 7, size=n_events)
    n = int(jets_per_event.sum())
    probabilities = np.array([fractions.get(f, 0.0) for f in FLAVOURS])
    flavour = rng.choice(FLAVOURS, size=n, p=probabilities / probabilities.sum())
    pt = 20.0 + rng.exponential(40.0, size=n)
    mass = np.array([MASS[f] for f in flavour]) * rng.gamma(4.0, 0.25, size=n) * (pt / 50) ** 0.5
    btag = np.array([rng.beta(*BTAG[f]) for f in flavour])
    jets = {
        "pt": pt.astype(np.float32),
        "eta": rng.uniform(-2.4, 2.4, size=n).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, size=n).astype(np.float32),
        "mass": mass.astype(np.float32),
        "hadronFlavour": flavour.astype(np.int32),
        "btagDeepFlavB": btag.astype(np.float32),
        "jetId": np.where(rng.random(n) < 0.97, 6, 0).astype(np.int32),
    }
    branches: dict[str, np.ndarray | ak.Array] = {
        "event": np.arange(first_event, first_event + n_events, dtype=np.uint64),
        "genWeight": (weight * np.where(rng.random(n_events) < negative, -1, 1)).astype(np.float32),
    }
    for name in ("muon", "electron"):
        has = rng.random(n) < np.array([LEPTON[f] for f in flavour])
        lepton_pt = np.where(has, pt * rng.uniform(0.05, 0.4, size=n), 0.0)
        # a jet's lepton is the next one of its event: index = leptons before it in the event
        event_of = np.repeat(np.arange(n_events), jets_per_event)
        before = np.cumsum(has) - has
        first = np.concatenate([[0], np.cumsum(has)])[np.cumsum(jets_per_event) - jets_per_event]
        index = np.where(has, before - first[event_of], -1).astype(np.int32)
        per_event = np.bincount(event_of, weights=has, minlength=n_events).astype(np.int64)
        smear = {v: rng.normal(0, 0.05, int(has.sum())) for v in ("eta", "phi")}
        leptons = {"pt": lepton_pt[has]} | {v: jets[v][has] + d for v, d in smear.items()}
        branches[name.capitalize()] = ak.unflatten(
            ak.zip({v: x.astype(np.float32) for v, x in leptons.items()}), per_event
        )
        jets[f"{name}Idx1"] = index
        jets[f"{name}Idx2"] = np.full(n, -1, dtype=np.int32)
    branches["Jet"] = ak.unflatten(ak.zip(jets), jets_per_event)
    return branches
