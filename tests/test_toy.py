"""The toy sample: draws follow the documented densities and the truth log-likelihoods are exact."""

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import REPO, default_config, stage
from scipy import stats
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from hepsnake.config import validate
from hepsnake.config.checks import check_inputs
from hepsnake.errors import HepsnakeError
from hepsnake.prepare.guard import forbidden_reason, is_truth_column
from hepsnake.simulate.densities import (
    ORIGINS,
    STORED_POSTERIORS,
    bayes_constituent_score,
    class_model,
    group_posterior,
    origin_field,
)
from hepsnake.simulate.prepared import MASS_GRID
from hepsnake.simulate.toy import COLLECTIONS, draw, sample_seed, simulate, simulate_sample

CONSTITUENT_TRUTH = [
    "truth_origin",
    "truth_vertex",
    *(origin_field(o, g) for o, g in STORED_POSTERIORS),
]
LLP = ORIGINS.index("llp")


@pytest.fixture(scope="module")
def samples():
    return {
        "qcd": simulate("qcd", "qcd", 20000, 7, **MASS_GRID),
        "bib": simulate("bib", "bib", 20000, 7, **MASS_GRID),
        "sig16": simulate("sig16", "sig", 20000, 7, mass=16, **MASS_GRID),
        "sig40": simulate("sig40", "sig", 20000, 7, mass=40, **MASS_GRID),
    }


def auc(sig, bkg, num, den):
    score = np.r_[sig[num] - sig[den], bkg[num] - bkg[den]]
    truth = np.r_[np.ones(len(sig[num])), np.zeros(len(bkg[num]))]
    return roc_auc_score(truth, score)


def test_exact_likelihood_separates_the_classes(samples):
    assert auc(samples["sig16"], samples["qcd"], "truth_logp_sig_mS16", "truth_logp_qcd") > 0.8
    assert auc(samples["sig16"], samples["bib"], "truth_logp_sig_mS16", "truth_logp_bib") > 0.8
    assert auc(samples["bib"], samples["qcd"], "truth_logp_bib", "truth_logp_qcd") > 0.8
    # the right mass hypothesis is better than a wrong one on the same jets
    right = auc(samples["sig40"], samples["qcd"], "truth_logp_sig_mS40", "truth_logp_qcd")
    wrong = auc(samples["sig40"], samples["qcd"], "truth_logp_sig_mS5", "truth_logp_qcd")
    assert right > wrong


def test_posterior_is_calibrated(samples):
    """On an equal mix, P(sig | LLR) must equal sigmoid(LLR) if the log-densities are exact."""
    sig, qcd = samples["sig16"], samples["qcd"]
    llr = np.r_[
        sig["truth_logp_sig_mS16"] - sig["truth_logp_qcd"],
        qcd["truth_logp_sig_mS16"] - qcd["truth_logp_qcd"],
    ]
    is_sig = np.r_[np.ones(len(sig["mS"])), np.zeros(len(qcd["jet_pt"]))]
    edges = np.quantile(llr, np.linspace(0, 1, 11))
    which = np.clip(np.digitize(llr, edges[1:-1]), 0, 9)
    pulls = []
    for b in range(10):
        in_bin = which == b
        expected = expit(llr[in_bin]).mean()
        observed = is_sig[in_bin].mean()
        sigma = np.sqrt(expected * (1 - expected) / in_bin.sum()) + 1e-3
        pulls.append((observed - expected) / sigma)
    assert np.max(np.abs(pulls)) < 4.5, pulls
    # a wrong density (the mS=55 hypothesis) is visibly mis-calibrated on the same jets
    wrong = np.r_[
        sig["truth_logp_sig_mS55"] - sig["truth_logp_qcd"],
        qcd["truth_logp_sig_mS55"] - qcd["truth_logp_qcd"],
    ]
    assert abs(expit(wrong).mean() - is_sig.mean()) > 0.02


@pytest.mark.parametrize("process", ["qcd", "sig", "bib"])
def test_draws_follow_the_densities(process):
    model = class_model(process, mass=16.0 if process == "sig" else None)
    toy = draw(model, 5000, np.random.default_rng(3))
    for name, dist in model.jets.items():
        if hasattr(dist, "cdf"):
            assert stats.kstest(toy.jets[name], dist.cdf).pvalue > 1e-4, name
    for coll, n_dist, fields in (
        ("tracks", model.n_tracks, model.tracks),
        ("clusters", model.n_clusters, model.clusters),
    ):
        counts = toy.collections[coll].counts
        observed = np.bincount(counts, minlength=len(n_dist.log_pmf))
        expected = np.exp(n_dist.log_pmf) * len(counts)
        keep = expected > 5
        chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4, coll
        for name, dist in fields.items():
            assert stats.kstest(toy.collections[coll].fields[name], dist.cdf).pvalue > 1e-4


def flat(sample, prefix, field):
    return ak.to_numpy(ak.flatten(sample[prefix][field]))


def stored(sample, prefix):
    """The stored posterior fields of every constituent of ``sample``, flat."""
    return {
        origin_field(o, g): flat(sample, prefix, origin_field(o, g)) for o, g in STORED_POSTERIORS
    }


def posterior(sample, prefix, group):
    """(n, 3) P(origin | x, group) of every constituent of ``sample``."""
    return group_posterior(stored(sample, prefix), group)


def calibration_pulls(p, hit, bins=10):
    """(observed - mean predicted) / binomial error in quantile bins of the predicted ``p``."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.digitize(p, edges[1:-1]), 0, len(edges) - 2)
    pulls = []
    for b in np.unique(which):
        expected, observed = p[which == b].mean(), hit[which == b].mean()
        sigma = np.sqrt(max(expected * (1 - expected), 1e-6) / (which == b).sum())
        pulls.append((observed - expected) / sigma)
    return np.abs(pulls)


def test_constituent_truth_leaves_the_physics_unchanged():
    """Origins come from their own stream: every variable is what draw() alone gives."""
    branches = simulate("sig16", "sig", 2000, 7, mass=16, **MASS_GRID)
    toy = draw(class_model("sig", 16), 2000, np.random.default_rng(sample_seed(7, "sig16")))
    for coll, prefix in COLLECTIONS.items():
        for field, values in toy.collections[coll].fields.items():
            np.testing.assert_array_equal(flat(branches, prefix, field), values.astype(np.float32))
        for field in CONSTITUENT_TRUTH:
            kind = flat(branches, prefix, field).dtype
            assert kind == (np.int8 if field in ("truth_origin", "truth_vertex") else np.float32)
    np.testing.assert_array_equal(branches["jet_pt"], toy.jets["pt"].astype(np.float32))


@pytest.mark.parametrize("prefix", COLLECTIONS.values())
def test_origins_and_vertices(samples, prefix):
    for name, sample in samples.items():
        origin, vertex = flat(sample, prefix, "truth_origin"), flat(sample, prefix, "truth_vertex")
        counts = np.bincount(origin, minlength=len(ORIGINS))
        assert counts.sum() == len(origin) and len(counts) == len(ORIGINS)
        np.testing.assert_array_equal(vertex == -1, origin == ORIGINS.index("pileup"))
        np.testing.assert_array_equal(vertex == 0, origin == ORIGINS.index("prompt"))
        np.testing.assert_array_equal(vertex >= 1, origin == LLP)
        if name.startswith("sig"):
            # a tenth to a half of the constituents of signal jets come from the LLP, some jets
            # have two displaced vertices
            assert 0.1 < counts[LLP] / len(origin) < 0.5 and np.any(vertex == 2)
        else:
            assert counts[LLP] == 0 and counts[:LLP].min() > 0.03 * len(origin)


@pytest.mark.parametrize("prefix", COLLECTIONS.values())
def test_origin_posterior_is_calibrated(samples, prefix):
    """On >= 1e5 constituents per class, P(origin k | x, class) matches the observed origins;
    the other group's law (a wrong posterior) does not."""
    for name, group in (("sig16", "sig"), ("qcd", "bkg"), ("bib", "bkg")):
        p = posterior(samples[name], prefix, group)
        origin = flat(samples[name], prefix, "truth_origin")
        assert len(origin) > 1e5
        for k in range(len(ORIGINS) if group == "sig" else LLP):
            assert calibration_pulls(p[:, k], origin == k).max() < 4.5, (name, k)
    wrong = posterior(samples["sig16"], prefix, "bkg")[:, 0]
    assert calibration_pulls(wrong, flat(samples["sig16"], prefix, "truth_origin") == 0).max() > 10


@pytest.mark.parametrize("prefix", COLLECTIONS.values())
def test_bayes_constituent_score(samples, prefix):
    """The jet-marginal Bayes posterior of the LLP origin on an equal qcd/bib/sig mix: calibrated,
    far from random, and better than either group's law alone."""
    mix = [samples[n] for n in ("qcd", "bib", "sig16")]
    per_jet = {"qcd": "truth_logp_qcd", "bib": "truth_logp_bib", "sig": "truth_logp_sig_mS16"}
    counts = [ak.to_numpy(ak.num(s[prefix])) for s in mix]
    jet_logp = {
        c: np.concatenate([np.repeat(s[col], n) for s, n in zip(mix, counts, strict=True)])
        for c, col in per_jet.items()
    }
    fields = {
        f: np.concatenate([stored(s, prefix)[f] for s in mix]) for f in stored(mix[0], prefix)
    }
    score = bayes_constituent_score(fields, jet_logp, dict.fromkeys(per_jet, 1 / 3))
    p_sig = group_posterior(fields, "sig")
    np.testing.assert_allclose(score.sum(axis=1), 1.0, atol=1e-5)
    is_llp = np.concatenate([flat(s, prefix, "truth_origin") for s in mix]) == LLP
    assert calibration_pulls(score[:, LLP], is_llp).max() < 4.5
    bayes = roc_auc_score(is_llp, score[:, LLP])
    assert bayes > 0.8 and bayes > roc_auc_score(is_llp, p_sig[:, LLP]) + 0.01


def test_constituent_truth_is_never_an_input():
    for field in CONSTITUENT_TRUTH:
        assert forbidden_reason(field, []) and is_truth_column(field, [], None), field
        inputs = {"allow_truth_inputs": False, "truth": [], "variables": {"tracks": ["pt", field]}}
        with pytest.raises(HepsnakeError, match=f"truth leak: '{field}'"):
            check_inputs(inputs)


def test_reproducible_per_sample_stream():
    a = simulate("qcd", "qcd", 500, 1, **MASS_GRID)
    b = simulate("qcd", "qcd", 500, 1, **MASS_GRID)
    c = simulate("qcd2", "qcd", 500, 1, **MASS_GRID)
    assert np.array_equal(a["jet_pt"], b["jet_pt"])
    assert not np.array_equal(a["jet_pt"], c["jet_pt"])


def test_data_sample_carries_the_mismodelling():
    data = simulate("d", "qcd", 20000, 1, mismodel=True, is_data=True, **MASS_GRID)
    mc = simulate("m", "qcd", 20000, 1, **MASS_GRID)
    assert np.all(data["mcEventWeight"] == 1) and mc["mcEventWeight"].std() > 0.1
    time_shift = np.mean(np.concatenate(data["cluster"].time)) - np.mean(
        np.concatenate(mc["cluster"].time)
    )
    assert 0.2 < time_shift < 0.3
    assert np.mean(ak.num(data["track"])) > 1.15 * np.mean(ak.num(mc["track"]))


def test_written_as_ttree(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = default_config() | {
        "simulate": {
            "seed": 2,
            "masses": {"train": [5, 16], "unseen": [40]},
            "samples": {"s": {"process": "sig", "mS": 16, "n_jets": 300}},
        }
    }
    out = tmp_path / "s.root"
    assert simulate_sample(stage(validate(config), "simulate", sample="s"), out) == 300
    tree = uproot.open(out)["jets"]
    assert isinstance(tree, uproot.TTree) and tree.num_entries == 300
    keys = set(tree.keys())
    assert {"ntrack", "track_pt", "ncluster", "cluster_time", "eventNumber", "mS"} <= keys
    assert {"truth_logp_sig_mS5", "truth_logp_sig_mS16", "truth_logp_sig_mS40"} <= keys
    assert {f"{p}_{f}" for p in COLLECTIONS.values() for f in CONSTITUENT_TRUTH} <= keys
    events = tree["eventNumber"].array(library="np")
    assert len(np.unique(events)) < len(events)  # several jets share an event
    assert not list(tmp_path.glob(".*.tmp"))
