"""ROC, AUC and rejection from class probabilities, next to the Bayes-optimal toy truth.

Two kinds of ROC: each background class alone (pairwise discriminant log(p_sig / p_b)), and
``inclusive``: signal against all background classes mixed by the configured fractions, with
the discriminant log(p_sig / Σ_b f_b p_b). Where signal is taken inclusively it is the signal of
the training masses (every signal jet when there is no mass field or no mass list); other masses
enter only per mass.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from hepsnake.config import MASS
from hepsnake.errors import HepsnakeError
from hepsnake.stats import weighted_ks

INCLUSIVE = "inclusive"
BAYES = "Bayes-optimal"
EPS = 1e-12

# ROC name → (discriminant of every jet, weight of every jet in that ROC's background)
RocInputs = dict[str, tuple[np.ndarray, np.ndarray]]


def log_discriminant(
    logp: dict[str, np.ndarray], signal: str, fractions: dict[str, float]
) -> np.ndarray:
    """log p_sig − log Σ_b f_b p_b from per-class log-probabilities (or log-likelihoods)."""
    terms = [np.log(f) + logp[b] for b, f in fractions.items() if f > 0]
    return logp[signal] - np.logaddexp.reduce(terms, axis=0)


def discriminant(
    probs: dict[str, np.ndarray], signal: str, fractions: dict[str, float]
) -> np.ndarray:
    """log(p_sig / Σ_b f_b p_b) over the background classes in ``fractions``."""
    return log_discriminant({c: np.log(p + EPS) for c, p in probs.items()}, signal, fractions)


def labelled(
    score_sig: np.ndarray, score_bkg: np.ndarray, weight_bkg: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(truth, scores, weights) of signal then background, as sklearn's metrics take them;
    signal jets weigh 1."""
    truth = np.r_[np.ones(len(score_sig)), np.zeros(len(score_bkg))]
    weights = None if weight_bkg is None else np.r_[np.ones(len(score_sig)), weight_bkg]
    return truth, np.r_[score_sig, score_bkg], weights


def roc_points(
    score_sig: np.ndarray, score_bkg: np.ndarray, weight_bkg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(background efficiency, signal efficiency) along the threshold; background weighted."""
    truth, scores, weights = labelled(score_sig, score_bkg, weight_bkg)
    fpr, tpr, _ = roc_curve(truth, scores, sample_weight=weights)
    return fpr, tpr


def auc(
    score_sig: np.ndarray, score_bkg: np.ndarray, weight_bkg: np.ndarray | None = None
) -> float:
    """Area under the ROC curve of signal vs (weighted) background scores (sklearn)."""
    truth, scores, weights = labelled(score_sig, score_bkg, weight_bkg)
    return float(roc_auc_score(truth, scores, sample_weight=weights))


def rejection_at(
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    efficiencies: list[float],
    weight_bkg: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Background rejection 1/ε_b at each signal efficiency, with its binomial uncertainty
    (on the effective number of background jets (Σw)²/Σw² when weighted); inf/NaN when no
    background passes."""
    fpr, tpr = roc_points(score_sig, score_bkg, weight_bkg)
    w = np.ones(len(score_bkg)) if weight_bkg is None else weight_bkg
    n_eff = w.sum() ** 2 / np.sum(w**2)
    out = {}
    for eff in efficiencies:
        eps_b = float(np.interp(eff, tpr, fpr))
        rej = 1.0 / eps_b if eps_b > 0 else float("inf")
        err = rej * np.sqrt((1 - eps_b) / (eps_b * n_eff)) if eps_b > 0 else float("nan")
        out[f"{eff:g}"] = {"rejection": rej, "uncertainty": float(err)}
    return out


def rejection_curve(
    score_sig: np.ndarray, score_bkg: np.ndarray, weight_bkg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(signal efficiency, background rejection) along the threshold (ε_b > 0 only)."""
    fpr, tpr = roc_points(score_sig, score_bkg, weight_bkg)
    keep = fpr > 0
    return tpr[keep], 1.0 / fpr[keep]


def background_fractions(
    labels: np.ndarray, class_names: list[str], signal: str, configured: dict[str, float] | None
) -> dict[str, float]:
    """Fractions of the background classes present in ``labels``, normalised to sum 1.

    None: equal fractions. Configured fractions name background classes only, and every
    present one.
    """
    present = [c for i, c in enumerate(class_names) if c != signal and np.any(labels == i)]
    if not configured:
        return {b: 1.0 / len(present) for b in present}
    where = "config: evaluate/fractions"
    unknown = [b for b in configured if b == signal or b not in class_names]
    if unknown:
        raise HepsnakeError(where, f"'{unknown[0]}' is not a background class")
    missing = [b for b in present if b not in configured]
    if missing:
        raise HepsnakeError(where, f"no fraction for class '{missing[0]}'")
    total = sum(configured[b] for b in present)
    if total <= 0:
        raise HepsnakeError(where, "the fractions sum to 0")
    return {b: configured[b] / total for b in present}


def roc_inputs(
    logp: dict[str, np.ndarray],
    labels: np.ndarray,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float],
) -> RocInputs:
    """The ``inclusive`` ROC (each class weighted to sum f_b) and one per background class."""
    mixed = np.zeros(len(labels))
    out: RocInputs = {}
    for b, f in fractions.items():
        is_b = labels == class_names.index(b)
        mixed[is_b] = f / is_b.sum()
        out[b] = (log_discriminant(logp, signal, {b: 1.0}), is_b.astype(np.float64))
    return {INCLUSIVE: (log_discriminant(logp, signal, fractions), mixed)} | out


def model_logp(jets: np.ndarray, prefix: str, class_names: list[str]) -> dict[str, np.ndarray]:
    """log p of each class from the ``{prefix}_p{class}`` columns."""
    return {c: np.log(jets[f"{prefix}_p{c}"].astype(np.float64) + EPS) for c in class_names}


def truth_logp(
    jets: np.ndarray,
    class_names: list[str],
    signal: str,
    mass: float | np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """The toy's exact log-likelihoods, None where absent. The signal's is at ``mass``: one
    value, or one per jet (the mass a parameterised model saw each jet at), else the
    mixture over the training masses."""
    columns = {c: f"truth_logp_{c}" for c in class_names if c != signal or mass is None}
    per_mass = {}
    if mass is not None:
        per_mass = {float(m): f"truth_logp_{signal}_{MASS}{m:g}" for m in np.unique(mass)}
    if not all(col in jets.dtype.names for col in [*columns.values(), *per_mass.values()]):
        return None
    out = {c: jets[col].astype(np.float64) for c, col in columns.items()}
    if mass is not None:
        at = np.broadcast_to(np.asarray(mass, dtype=np.float64), len(jets))
        out[signal] = np.empty(len(jets))
        for m, col in per_mass.items():
            out[signal][at == m] = jets[col][at == m]
    return out


def signal_mask(
    jets: np.ndarray,
    class_names: list[str],
    signal: str,
    train_masses: list[float] | None = None,
    mass: float | None = None,
) -> np.ndarray:
    """The signal jets at ``mass``, or else the inclusive signal: that of ``train_masses``."""
    is_sig = jets["label"] == class_names.index(signal)
    if mass is not None:
        return is_sig & (jets[MASS] == mass)
    if MASS in jets.dtype.names and train_masses:
        return is_sig & np.isin(jets[MASS], train_masses)
    return is_sig


def signal_masses(jets: np.ndarray, class_names: list[str], signal: str) -> list[float]:
    """The signal masses present in ``jets`` (none without a mass field)."""
    if MASS not in jets.dtype.names:
        return []
    is_sig = jets["label"] == class_names.index(signal)
    return sorted(float(m) for m in np.unique(jets[MASS][is_sig]) if np.isfinite(m))


def mass_prefix(jets: np.ndarray, model: str, signal: str, mass: float) -> str:
    """Column prefix of ``model`` at ``mass``: its own ``{model}_mS{m}`` columns when it was
    evaluated there (parameterised models), else the plain ``{model}`` columns."""
    own = f"{model}_{MASS}{mass:g}"
    return own if f"{own}_p{signal}" in jets.dtype.names else model


def roc_sets(
    jets: np.ndarray,
    model: str,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float],
    mass: float | None = None,
) -> dict[str, RocInputs]:
    """ROC inputs of ``model`` (at ``mass``: see :func:`mass_prefix`) and, where the toy truth
    exists, of the Bayes-optimal classifier; keyed ``model`` and ``BAYES``. A parameterised
    model's plain columns saw each jet at the mass in ``{model}_mS``: its Bayes-optimal
    reference is the likelihood ratio at that mass, jet by jet."""
    labels = jets["label"]
    prefix = model if mass is None else mass_prefix(jets, model, signal, mass)
    logp = model_logp(jets, prefix, class_names)
    out = {model: roc_inputs(logp, labels, class_names, signal, fractions)}
    seen = f"{model}_{MASS}"
    if mass is None and seen in jets.dtype.names:
        mass = jets[seen].astype(np.float64)
    truth = truth_logp(jets, class_names, signal, mass)
    if truth is not None:
        out[BAYES] = roc_inputs(truth, labels, class_names, signal, fractions)
    return out


def curves(rocs: RocInputs, is_sig: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(signal efficiency, rejection) of each ROC in ``rocs``."""
    return {
        name: rejection_curve(score[is_sig], score[w > 0], w[w > 0])
        for name, (score, w) in rocs.items()
    }


def roc_metrics(
    sets: dict[str, RocInputs], model: str, is_sig: np.ndarray, working_points: list[float]
) -> dict[str, dict[str, Any]]:
    """AUC of each ROC of ``model`` in ``sets`` (and rejections at ``working_points``), with
    the Bayes-optimal AUC and the gap to it when ``sets`` has the truth."""
    out: dict[str, dict[str, Any]] = {}
    for name, (score, w) in sets[model].items():
        sig, bkg, wb = score[is_sig], score[w > 0], w[w > 0]
        out[name] = {"auc": auc(sig, bkg, wb)}
        if working_points:
            out[name]["rejection"] = rejection_at(sig, bkg, working_points, wb)
        if BAYES in sets:
            bayes = sets[BAYES][name][0]
            out[name]["bayes_auc"] = auc(bayes[is_sig], bayes[w > 0], wb)
            out[name]["auc_gap"] = out[name]["bayes_auc"] - out[name]["auc"]
    return out


@dataclass(frozen=True)
class RocBook:
    """Every ROC input of one model, built once: inclusive and at each signal mass."""

    model: str
    fractions: dict[str, float]
    inclusive: dict[str, RocInputs]
    masses: dict[float, dict[str, RocInputs]]


def roc_book(
    jets: np.ndarray,
    model: str,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float] | None = None,
) -> RocBook:
    """:func:`roc_sets` of ``model``, inclusive and at every signal mass; ``fractions`` are the
    configured background fractions (None: equal, see :func:`background_fractions`)."""
    fractions = background_fractions(jets["label"], class_names, signal, fractions)
    return RocBook(
        model,
        fractions,
        roc_sets(jets, model, class_names, signal, fractions),
        {
            m: roc_sets(jets, model, class_names, signal, fractions, m)
            for m in signal_masses(jets, class_names, signal)
        },
    )


def model_metrics(
    jets: np.ndarray,
    book: RocBook,
    class_names: list[str],
    signal: str,
    working_points: list[float],
    train_masses: list[float] | None = None,
) -> dict[str, Any]:
    """AUCs and rejections, inclusive and per background class, and AUCs per signal mass.

    Where the toy's ``truth_logp_*`` fields exist, the Bayes-optimal AUC on the same jets is
    given next to the model's.
    """
    is_sig = signal_mask(jets, class_names, signal, train_masses)
    entries = roc_metrics(book.inclusive, book.model, is_sig, working_points)
    out: dict[str, Any] = {
        "n_test": len(jets),
        "fractions": book.fractions,
        INCLUSIVE: entries.pop(INCLUSIVE),
        "backgrounds": entries,
        "masses": {},
    }
    for m, sets in book.masses.items():
        per = roc_metrics(sets, book.model, signal_mask(jets, class_names, signal, mass=m), [])
        unseen = bool(train_masses) and m not in train_masses
        out["masses"][f"{m:g}"] = {"unseen": unseen} | per
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
