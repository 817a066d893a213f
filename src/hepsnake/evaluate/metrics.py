"""ROC, AUC and rejection from class probabilities, next to the Bayes-optimal toy truth."""

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from hepsnake.stats import weighted_ks


def discriminant(
    probs: dict[str, np.ndarray], signal: str, fractions: dict[str, float]
) -> np.ndarray:
    """log(p_sig / Σ_b f_b p_b) over the background classes in ``fractions``."""
    eps = 1e-12
    denom = sum(f * probs[b] for b, f in fractions.items())
    return np.log(probs[signal] + eps) - np.log(denom + eps)


def auc(score_sig: np.ndarray, score_bkg: np.ndarray) -> float:
    """Area under the ROC curve of signal vs background scores (sklearn)."""
    truth = np.r_[np.ones(len(score_sig)), np.zeros(len(score_bkg))]
    return float(roc_auc_score(truth, np.r_[score_sig, score_bkg]))


def rejection_at(
    score_sig: np.ndarray, score_bkg: np.ndarray, efficiencies: list[float]
) -> dict[str, dict[str, float]]:
    """Background rejection 1/ε_b at each signal efficiency, with its binomial uncertainty."""
    truth = np.r_[np.ones(len(score_sig)), np.zeros(len(score_bkg))]
    fpr, tpr, _ = roc_curve(truth, np.r_[score_sig, score_bkg])
    out = {}
    for eff in efficiencies:
        eps_b = float(np.interp(eff, tpr, fpr))
        n_b = len(score_bkg)
        rej = 1.0 / eps_b if eps_b > 0 else float("inf")
        err = rej * np.sqrt((1 - eps_b) / (eps_b * n_b)) if eps_b > 0 else float("nan")
        out[f"{eff:g}"] = {"rejection": rej, "uncertainty": float(err)}
    return out


def model_metrics(
    jets: np.ndarray,
    model: str,
    class_names: list[str],
    signal: str,
    working_points: list[float],
    train_masses: list[float] | None = None,
) -> dict[str, Any]:
    """AUCs and rejections per background class (signal from training masses), and per mass.

    Where the toy's ``truth_logp_*`` fields exist, the Bayes-optimal AUC on the same jets
    is given next to the model's.
    """
    probs = {c: jets[f"{model}_p{c}"].astype(np.float64) for c in class_names}
    label = jets["label"]
    sig_idx = class_names.index(signal)
    is_sig = label == sig_idx
    has_mass = "mS" in jets.dtype.names
    in_train = is_sig & (np.isin(jets["mS"], train_masses) if has_mass and train_masses else True)
    truth = all(f"truth_logp_{c}" in jets.dtype.names for c in class_names)
    out: dict[str, Any] = {"n_test": len(jets), "backgrounds": {}, "masses": {}}
    for b, name in enumerate(class_names):
        if b == sig_idx or not np.any(label == b):
            continue
        is_b = label == b
        score = discriminant(probs, signal, {name: 1.0})
        entry: dict[str, Any] = {
            "auc": auc(score[in_train], score[is_b]),
            "rejection": rejection_at(score[in_train], score[is_b], working_points),
        }
        if truth:
            bayes = jets[f"truth_logp_{signal}"] - jets[f"truth_logp_{name}"]
            entry["bayes_auc"] = auc(bayes[in_train], bayes[is_b])
            entry["auc_gap"] = entry["bayes_auc"] - entry["auc"]
        out["backgrounds"][name] = entry
        if has_mass:
            for m in np.unique(jets["mS"][is_sig]):
                sel = is_sig & (jets["mS"] == m)
                per = out["masses"].setdefault(
                    f"{m:g}", {"unseen": bool(train_masses and m not in train_masses)}
                )
                own = f"{model}_mS{m:g}_p{signal}"
                if own in jets.dtype.names:  # a parameterised model evaluated at this mass
                    at_mass = {
                        c: jets[f"{model}_mS{m:g}_p{c}"].astype(np.float64) for c in class_names
                    }
                    mass_score = discriminant(at_mass, signal, {name: 1.0})
                else:
                    mass_score = score
                per[name] = {"auc": auc(mass_score[sel], mass_score[is_b])}
                column = f"truth_logp_{signal}_mS{m:g}"
                if column in jets.dtype.names:
                    bayes = jets[column] - jets[f"truth_logp_{name}"]
                    per[name]["bayes_auc"] = auc(bayes[sel], bayes[is_b])
    return out


def control_ks(jets: np.ndarray, model: str, class_names: list[str]) -> dict[str, dict[str, float]]:
    """Weighted data/MC K-S distance and p-value of every class output in the control region."""
    is_data = jets["is_data"].astype(bool)
    weights = jets["train_weight"].astype(np.float64)
    out = {}
    for c in class_names:
        values = jets[f"{model}_p{c}"]
        d, p = weighted_ks(values[is_data], values[~is_data], weights[is_data], weights[~is_data])
        out[c] = {"ks": d, "p_value": p}
    return out
