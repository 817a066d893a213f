"""The toy sample: draws follow the documented densities and the truth log-likelihoods are exact."""

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import GRID
from scipy import stats
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from hepsnake.simulate.densities import class_model
from hepsnake.simulate.toy import draw, simulate, simulate_sample


@pytest.fixture(scope="module")
def samples():
    return {
        "qcd": simulate("qcd", "qcd", 20000, 7, **GRID),
        "bib": simulate("bib", "bib", 20000, 7, **GRID),
        "sig16": simulate("sig16", "sig", 20000, 7, mass=16, **GRID),
        "sig40": simulate("sig40", "sig", 20000, 7, mass=40, **GRID),
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


def test_reproducible_per_sample_stream():
    a = simulate("qcd", "qcd", 500, 1, **GRID)
    b = simulate("qcd", "qcd", 500, 1, **GRID)
    c = simulate("qcd2", "qcd", 500, 1, **GRID)
    assert np.array_equal(a["jet_pt"], b["jet_pt"])
    assert not np.array_equal(a["jet_pt"], c["jet_pt"])


def test_data_sample_carries_the_mismodelling():
    data = simulate("d", "qcd", 20000, 1, mismodel=True, is_data=True, **GRID)
    mc = simulate("m", "qcd", 20000, 1, **GRID)
    assert np.all(data["mcEventWeight"] == 1) and mc["mcEventWeight"].std() > 0.1
    time_shift = np.mean(np.concatenate(data["cluster"].time)) - np.mean(
        np.concatenate(mc["cluster"].time)
    )
    assert 0.2 < time_shift < 0.3
    assert np.mean(ak.num(data["track"])) > 1.15 * np.mean(ak.num(mc["track"]))


def test_written_as_ttree(tmp_path):
    config = {
        "simulate": {
            "seed": 2,
            "masses": {"train": [5, 16], "unseen": [40]},
            "samples": {"s": {"process": "sig", "mS": 16, "n_jets": 300}},
        }
    }
    out = tmp_path / "s.root"
    assert simulate_sample(config, "s", out) == 300
    tree = uproot.open(out)["jets"]
    assert isinstance(tree, uproot.TTree) and tree.num_entries == 300
    keys = set(tree.keys())
    assert {"ntrack", "track_pt", "ncluster", "cluster_time", "eventNumber", "mS"} <= keys
    assert {"truth_logp_sig_mS5", "truth_logp_sig_mS16", "truth_logp_sig_mS40"} <= keys
    events = tree["eventNumber"].array(library="np")
    assert len(np.unique(events)) < len(events)  # several jets share an event
    assert not list(tmp_path.glob(".*.tmp"))
