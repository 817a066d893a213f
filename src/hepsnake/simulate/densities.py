"""Class-conditional densities of the toy sample: features are drawn from and scored by them.

A jet of class c has independent jet variables, a truncated-Poisson number of tracks and of
clusters, and i.i.d. constituents, so its exact log-likelihood is a sum of 1-D terms. Signal
parameters move smoothly with the LLP mass ``mS`` (GeV), so a model can interpolate between masses.
The table in ``config/README.md`` lists every density.

Constituent truth: each track and cluster of a jet of class c has an origin k in
:data:`ORIGINS` (0 pile-up/fake, 1 prompt, 2 LLP decay, the last only in signal jets) drawn
after its variables x from r_k(x) = softmax(:func:`origin_logits`), a fixed law of x alone per
origin group (signal, or QCD and BIB). So (x, k) has density f_c(x) r_k(x): the origin-conditional
density is f_c(x) r_k(x) / E_c[r_k], the marginal of x is f_c(x) unchanged, the jet likelihood
stays the product above, and r_k(x) (:func:`origin_posterior`) is the exact P(k | x, group);
:data:`STORED_POSTERIORS` are written per constituent, :func:`bayes_constituent_score` mixes the
groups with the jet's class posterior.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import expit, log_softmax, logsumexp

MAX_TRACKS = 40
MAX_CLUSTERS = 30


class TruncPoisson:
    """Poisson(mu) restricted to 0..n_max, renormalised."""

    def __init__(self, mu: float, n_max: int) -> None:
        k = np.arange(n_max + 1)
        log_pmf = stats.poisson.logpmf(k, mu)
        self.log_pmf = log_pmf - logsumexp(log_pmf)

    def rvs(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.log_pmf), size=size, p=np.exp(self.log_pmf)).astype(np.int32)

    def logpmf(self, n: np.ndarray) -> np.ndarray:
        return self.log_pmf[n]


class Mixture:
    """Equal-weight mixture of frozen scipy distributions."""

    def __init__(self, *components: stats.rv_continuous) -> None:
        self.components = components

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        which = random_state.integers(len(self.components), size=size)
        draws = np.stack([c.rvs(size=size, random_state=random_state) for c in self.components])
        return draws[which, np.arange(size)]

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        logs = np.stack([c.logpdf(x) for c in self.components])
        return logsumexp(logs, axis=0) - np.log(len(self.components))


def wrapped_phi_bib() -> Mixture:
    """BIB enters along the horizontal plane: phi peaks at 0 and pi (von Mises)."""
    return Mixture(stats.vonmises(kappa=1.0, loc=0.0), stats.vonmises(kappa=1.0, loc=np.pi))


@dataclass(frozen=True)
class ClassModel:
    """All densities of one class (and, for signal, one mass)."""

    jets: dict
    n_tracks: TruncPoisson
    tracks: dict
    n_clusters: TruncPoisson
    clusters: dict


def eta(sigma: float) -> stats.rv_continuous:
    """Normal(0, sigma) truncated to |eta| < 2.5."""
    return stats.truncnorm(-2.5 / sigma, 2.5 / sigma, loc=0.0, scale=sigma)


UNIFORM_PHI = stats.uniform(loc=-np.pi, scale=2 * np.pi)


def qcd(mismodel: bool = False) -> ClassModel:
    """Prompt multijet background; ``mismodel`` gives the control-region 'data' variant:
    cluster time shifted by +0.25 ns and 25 % more tracks."""
    return ClassModel(
        jets={
            "pt": stats.gamma(a=1.6, loc=20.0, scale=35.0),
            "eta": eta(1.4),
            "phi": UNIFORM_PHI,
            "log_ratio": stats.norm(loc=-0.6, scale=0.9),
            "time": stats.norm(loc=0.0, scale=0.6),
            "width": stats.gamma(a=3.0, scale=0.030),
        },
        n_tracks=TruncPoisson(10.0 * (1.25 if mismodel else 1.0), MAX_TRACKS),
        tracks={
            "pt": stats.gamma(a=1.1, loc=1.0, scale=4.0),
            "deta": stats.norm(scale=0.12),
            "dphi": stats.norm(scale=0.12),
            "d0": stats.laplace(scale=0.08),
            "z0": stats.laplace(scale=0.5),
        },
        n_clusters=TruncPoisson(8.0, MAX_CLUSTERS),
        clusters={
            "e": stats.gamma(a=1.3, loc=0.5, scale=6.0),
            "f_em": stats.beta(a=4.0, b=3.0),
            "time": stats.norm(loc=0.25 if mismodel else 0.0, scale=0.6),
            "deta": stats.norm(scale=0.15),
            "dphi": stats.norm(scale=0.15),
        },
    )


def signal(mass: float) -> ClassModel:
    """Displaced LLP decay in the hadronic calorimeter; parameters move smoothly with ``mass``."""
    return ClassModel(
        jets={
            "pt": stats.gamma(a=2.0, loc=20.0, scale=18.0 + 0.4 * mass),
            "eta": eta(1.2),
            "phi": UNIFORM_PHI,
            "log_ratio": stats.norm(loc=-0.3 + 0.006 * mass, scale=1.0),
            "time": stats.norm(loc=0.1 + 0.004 * mass, scale=0.7),
            "width": stats.gamma(a=3.0, scale=0.026 + 0.00005 * mass),
        },
        n_tracks=TruncPoisson(7.0 + 0.02 * mass, MAX_TRACKS),
        tracks={
            "pt": stats.gamma(a=1.1, loc=1.0, scale=3.7),
            "deta": stats.norm(scale=0.11 + 0.0003 * mass),
            "dphi": stats.norm(scale=0.11 + 0.0003 * mass),
            "d0": stats.laplace(scale=0.09 + 0.0006 * mass),
            "z0": stats.laplace(scale=0.52),
        },
        n_clusters=TruncPoisson(8.0, MAX_CLUSTERS),
        clusters={
            "e": stats.gamma(a=1.35, loc=0.5, scale=6.0),
            "f_em": stats.beta(a=3.7, b=3.1),
            "time": stats.norm(loc=0.05 + 0.002 * mass, scale=0.62),
            "deta": stats.norm(scale=0.14),
            "dphi": stats.norm(scale=0.14),
        },
    )


def bib() -> ClassModel:
    """Beam-induced background: early, peaked in phi at 0 and pi, wide in eta."""
    return ClassModel(
        jets={
            "pt": stats.gamma(a=1.3, loc=20.0, scale=40.0),
            "eta": eta(1.6),
            "phi": wrapped_phi_bib(),
            "log_ratio": stats.norm(loc=-0.3, scale=1.0),
            "time": stats.norm(loc=-0.3, scale=0.9),
            "width": stats.gamma(a=2.8, scale=0.030),
        },
        n_tracks=TruncPoisson(8.0, MAX_TRACKS),
        tracks={
            "pt": stats.gamma(a=1.1, loc=1.0, scale=3.8),
            "deta": stats.norm(scale=0.13),
            "dphi": stats.norm(scale=0.12),
            "d0": stats.laplace(scale=0.10),
            "z0": stats.laplace(scale=0.6),
        },
        n_clusters=TruncPoisson(7.0, MAX_CLUSTERS),
        clusters={
            "e": stats.gamma(a=1.3, loc=0.5, scale=6.3),
            "f_em": stats.beta(a=3.8, b=3.2),
            "time": stats.norm(loc=-0.1, scale=0.65),
            "deta": stats.norm(scale=0.16),
            "dphi": stats.norm(scale=0.15),
        },
    )


def class_model(process: str, mass: float | None = None, mismodel: bool = False) -> ClassModel:
    """The densities of ``process`` (qcd, sig, bib); signal needs ``mass``."""
    if process == "qcd":
        return qcd(mismodel)
    if process == "sig":
        if mass is None:
            raise ValueError("signal needs a mass")
        return signal(mass)
    if process == "bib":
        return bib()
    raise ValueError(f"unknown process '{process}' (qcd, sig, bib)")


# Constituent truth (issue 14 §2): origin codes of ``truth_origin``, in this order.
ORIGINS = ("pileup", "prompt", "llp")
ORIGIN_GROUPS = ("sig", "bkg")  # the origin law of signal jets, and of QCD and BIB jets
P_TWO_VERTICES = 0.3  # P(a signal jet has two displaced vertices); else one
VERTEX_SIDE = 0.05  # dphi scale of the side a two-vertex jet's LLP constituent is assigned to


def origin_group(process: str) -> str:
    """``sig`` for signal jets, ``bkg`` for QCD and BIB (which have no LLP origin)."""
    return "sig" if process == "sig" else "bkg"


def origin_field(origin: str, group: str) -> str:
    """The constituent field ``truth_p_{origin}_{group}``: P(origin | the constituent's
    variables, the jet is of ``group``)."""
    return f"truth_p_{origin}_{group}"


# the posteriors written per constituent; the rest follow (prompt = 1 - pileup - llp, no LLP
# origin in bkg jets)
STORED_POSTERIORS = (("pileup", "sig"), ("llp", "sig"), ("pileup", "bkg"))


def origin_logits(collection: str, fields: dict[str, np.ndarray], group: str) -> np.ndarray:
    """(n, 3) logits of (pileup, prompt, llp) given each constituent's own variables.

    Tracks: pile-up/fake tracks have large |z0| and low pt, LLP tracks large |d0|. Clusters:
    pile-up/noise clusters are soft and out of time, LLP clusters late with a low EM fraction.
    ``bkg`` jets have no LLP origin (logit -inf).
    """
    if collection == "tracks":
        pileup = -2.0 + 2.5 * np.abs(fields["z0"]) - 0.25 * (fields["pt"] - 1.0)
        llp = -2.5 + 20.0 * np.abs(fields["d0"])
    elif collection == "clusters":
        pileup = -0.5 - 0.4 * (fields["e"] - 0.5) + 2.0 * np.abs(fields["time"])
        llp = -1.0 + 3.0 * fields["time"] - 6.0 * (fields["f_em"] - 0.5)
    else:
        raise ValueError(f"no origin law for collection '{collection}' (tracks, clusters)")
    pileup = np.asarray(pileup, dtype=np.float64)
    if group == "bkg":
        llp = np.full_like(pileup, -np.inf)
    elif group != "sig":
        raise ValueError(f"unknown origin group '{group}' (sig, bkg)")
    return np.stack([pileup, np.zeros_like(pileup), np.asarray(llp, dtype=np.float64)], axis=-1)


def origin_posterior(collection: str, fields: dict[str, np.ndarray], group: str) -> np.ndarray:
    """(n, 3) exact P(origin | the constituent's variables, jet group): the softmax of
    :func:`origin_logits`. The generator draws each origin from it, so it is the posterior."""
    return np.exp(log_softmax(origin_logits(collection, fields, group), axis=-1))


def two_vertex_side(dphi: np.ndarray) -> np.ndarray:
    """P(an LLP constituent of a two-vertex jet is from vertex 2, not 1) = expit(dphi / 0.05)."""
    return expit(np.asarray(dphi, dtype=np.float64) / VERTEX_SIDE)


def group_posterior(constituents: Mapping[str, np.ndarray] | np.ndarray, group: str) -> np.ndarray:
    """(..., 3) P(origin | variables, ``group``) rebuilt from the stored ``truth_p_*`` fields of
    ``constituents`` (a structured array, e.g. an HDF5 ``tracks`` table, or a dict)."""
    pileup = np.asarray(constituents[origin_field("pileup", group)], dtype=np.float64)
    llp = (
        np.asarray(constituents[origin_field("llp", group)], dtype=np.float64)
        if group == "sig"
        else np.zeros_like(pileup)
    )
    return np.stack([pileup, 1.0 - pileup - llp, llp], axis=-1)


def bayes_constituent_score(
    constituents: Mapping[str, np.ndarray] | np.ndarray,
    jet_logp: dict[str, np.ndarray],
    priors: dict[str, float],
    signal: str = "sig",
) -> np.ndarray:
    """Bayes-optimal P(origin | everything observed in the jet), shape (..., 3) in
    :data:`ORIGINS` order, for ``constituents`` of shape (N, max) (or (n,) with one jet row
    each); ``jet_logp``: class -> the jets' ``truth_logp_{class}`` (N,) (or (n,));
    ``priors``: class -> its fraction of the evaluated jets.

    Given its jet's class a constituent's origin depends on its own variables only, so
    P(k | jet) = P(sig | jet) P(k | x, sig) + (1 - P(sig | jet)) P(k | x, bkg), with P(sig | jet)
    from the exact jet likelihoods. Padded slots give meaningless rows: mask them.
    """
    names = list(jet_logp)
    logs = np.stack([jet_logp[c] + np.log(priors[c]) for c in names])
    w_sig = np.exp(logs[names.index(signal)] - logsumexp(logs, axis=0))
    p_sig, p_bkg = group_posterior(constituents, "sig"), group_posterior(constituents, "bkg")
    w = w_sig.reshape(w_sig.shape + (1,) * (p_sig.ndim - 1))
    return w * p_sig + (1.0 - w) * p_bkg
