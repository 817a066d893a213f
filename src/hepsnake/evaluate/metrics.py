"""ROC, AUC and rejection from class probabilities, next to the Bayes-optimal toy truth.

Two kinds of ROC: each background class alone, and ``inclusive``: signal against all background
classes mixed by the background fractions f_b, on the discriminant log(p_sig / Σ_b f_b p_b).
With ``fractions`` discriminants (the default outside flavour tagging) a background class alone
is scored by the pairwise log(p_sig / p_b); with the ``flavour`` discriminant (FTAG:
D_b = log(p_b / (f_c p_c + (1 − f_c) p_u))) every ROC uses the one D_b, as puma draws them.
Where signal is taken inclusively it is the signal of the training parameter values (every
signal jet without parameters); other values enter only per parameter point.
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepsnake.config.contracts import EvaluateSpec, ProbabilityTagger, ScoreTagger
from hepsnake.errors import HepsnakeError
from hepsnake.names import point_tag, prob_column
from hepsnake.roc import auc, roc
from hepsnake.stats import weighted_ks

INCLUSIVE = "inclusive"
BAYES = "Bayes-optimal"
EPS = 1e-12
# class names each flavour is recognised by (FTAG's first, then short forms)
FLAVOURS = {
    "b": ("bjets", "b", "bjet"),
    "c": ("cjets", "c", "cjet"),
    "tau": ("taujets", "tau", "taujet"),
    "light": ("ujets", "light", "u", "l", "ljets", "lightjets", "udsg"),
}
FTAG_WORKING_POINTS = [0.6, 0.7, 0.77, 0.85]
FRACTION_WORKING_POINTS = [0.5, 0.7, 0.85]

# ROC name → (discriminant of every jet, weight of every jet in that ROC's background)
RocInputs = dict[str, tuple[np.ndarray, np.ndarray]]
# parameter name → its values
Values = dict[str, list[float]]


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


def rejection_at(
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    efficiencies: list[float],
    weight_bkg: np.ndarray | None = None,
    weight_sig: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Background rejection 1/ε_b at each signal efficiency of the :func:`~hepsnake.roc.roc`,
    with its binomial uncertainty (on the effective number of background jets (Σw)²/Σw² when
    weighted); inf/NaN when no background passes."""
    curve = roc(score_sig, score_bkg, weight_sig, weight_bkg)
    fpr, tpr = curve.fpr, curve.tpr
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
    score_sig: np.ndarray,
    score_bkg: np.ndarray,
    weight_bkg: np.ndarray | None = None,
    weight_sig: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(signal efficiency, background rejection) along the threshold (ε_b > 0 only)."""
    curve = roc(score_sig, score_bkg, weight_sig, weight_bkg)
    fpr, tpr = curve.fpr, curve.tpr
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


def flavour_of(class_name: str) -> str | None:
    """The flavour (b, c, tau, light) a class name stands for, None for another name."""
    for flavour, names in FLAVOURS.items():
        if class_name.lower() in names:
            return flavour
    return None


@dataclass(frozen=True)
class Discriminant:
    """How the classes combine into one score: ``kind`` flavour or fractions, the configured
    background fractions (None: equal) and whether every ROC uses the combined score."""

    kind: str
    fractions: dict[str, float] | None
    shared: bool


def discriminant_setup(evaluate: EvaluateSpec, class_names: Sequence[str]) -> Discriminant:
    """The discriminant of ``evaluate.discriminant``: ``flavour`` (FTAG D_b, every background
    class recognised as c, tau or light; fractions f_c, f_tau and 1 − f_c − f_tau), ``fractions``
    (``evaluate.fractions``), or ``auto``: flavour when the signal is a b class, c and light
    classes exist and no ``evaluate.fractions`` are set."""
    spec = evaluate.discriminant
    kind, signal = spec.type, str(evaluate.signal)
    flavours = {c: flavour_of(c) for c in class_names if c != signal}
    if kind == "auto":
        is_ftag = flavour_of(signal) == "b" and {"c", "light"} <= set(flavours.values())
        is_ftag = is_ftag and not evaluate.fractions
        kind = "flavour" if is_ftag else "fractions"
    if kind == "fractions":
        fractions = dict(evaluate.fractions) if evaluate.fractions is not None else None
        return Discriminant(kind, fractions, False)
    where = "config: evaluate/discriminant"
    if evaluate.fractions:
        raise HepsnakeError(where, "a flavour discriminant takes f_c (fc), not evaluate.fractions")
    other = [c for c, f in flavours.items() if f is None or f == "b"]
    if other:
        raise HepsnakeError(where, f"class '{other[0]}' is not a c, tau or light flavour")
    fc, ftau = spec.fc, spec.ftau
    if fc + ftau > 1:
        raise HepsnakeError(where, f"fc + ftau = {fc + ftau:g} exceeds 1")
    share = {"c": fc, "tau": ftau, "light": 1.0 - fc - ftau}
    return Discriminant(kind, {c: share[str(f)] for c, f in flavours.items()}, True)


def discriminant_text(signal: str, fractions: dict[str, float]) -> str:
    """The discriminant as a formula, e.g. ``log(p_bjets / (0.2 p_cjets + 0.8 p_ujets))``."""
    terms = " + ".join(f"{f:.3g} p_{b}" for b, f in fractions.items() if f > 0)
    return f"log(p_{signal} / ({terms}))"


def working_points(evaluate: EvaluateSpec, setup: Discriminant) -> list[float]:
    """The configured signal efficiencies, else FTAG's for a flavour discriminant."""
    if evaluate.working_points:
        return list(evaluate.working_points)
    return FTAG_WORKING_POINTS if setup.kind == "flavour" else FRACTION_WORKING_POINTS


def roc_weights(
    labels: np.ndarray,
    class_names: list[str],
    fractions: dict[str, float],
    jet_weights: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Background weight of every jet in each ROC (0: not in it): ``inclusive`` (each class
    weighted to sum f_b) and each background class alone (its jets' ``jet_weights``, each
    class's summing to a positive number; None: 1 each)."""
    jw = np.ones(len(labels)) if jet_weights is None else jet_weights
    mixed = np.zeros(len(labels))
    out = {}
    for b, f in fractions.items():
        is_b = labels == class_names.index(b)
        mixed[is_b] = f * jw[is_b] / jw[is_b].sum()
        out[b] = np.where(is_b, jw, 0.0)
    return {INCLUSIVE: mixed} | out


def roc_inputs(
    logp: dict[str, np.ndarray],
    labels: np.ndarray,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float],
    shared: bool = False,
    jet_weights: np.ndarray | None = None,
) -> RocInputs:
    """The ``inclusive`` ROC and one per background class (:func:`roc_weights`), each class
    alone scored by log(p_sig / p_b), or with ``shared`` by the inclusive discriminant."""
    inclusive = log_discriminant(logp, signal, fractions)
    return {
        name: (
            inclusive
            if shared or name == INCLUSIVE
            else log_discriminant(logp, signal, {name: 1.0}),
            w,
        )
        for name, w in roc_weights(labels, class_names, fractions, jet_weights).items()
    }


def model_logp(jets: np.ndarray, prefix: str, class_names: list[str]) -> dict[str, np.ndarray]:
    """log p of each class from the ``{prefix}_p{class}`` columns (:func:`prob_column`)."""
    return {c: np.log(jets[prob_column(prefix, c)].astype(np.float64) + EPS) for c in class_names}


def truth_logp(
    jets: np.ndarray,
    class_names: list[str],
    signal: str,
    parameter: str | None = None,
    value: float | np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """The toy's exact log-likelihoods, None where absent. The signal's is at ``parameter`` =
    ``value``: one value, or one per jet (the value a parameterised model saw each jet at),
    else the mixture over the training values."""
    at_point = parameter is not None and value is not None
    columns = {c: f"truth_logp_{c}" for c in class_names if c != signal or not at_point}
    per_value = {}
    if at_point:
        per_value = {float(v): f"truth_logp_{signal}_{parameter}{v:g}" for v in np.unique(value)}
    if not all(col in jets.dtype.names for col in [*columns.values(), *per_value.values()]):
        return None
    out = {c: jets[col].astype(np.float64) for c, col in columns.items()}
    if at_point:
        at = np.broadcast_to(np.asarray(value, dtype=np.float64), len(jets))
        out[signal] = np.empty(len(jets))
        for v, col in per_value.items():
            out[signal][at == v] = jets[col][at == v]
    return out


def signal_mask(
    jets: np.ndarray,
    class_names: list[str],
    signal: str,
    train: Values | None = None,
    point: tuple[str, float] | None = None,
) -> np.ndarray:
    """The signal jets at ``point`` (parameter, value), or else the inclusive signal: that of
    the ``train`` values of each parameter the jets carry."""
    is_sig = jets["flavour_label"] == class_names.index(signal)
    if point is not None:
        return is_sig & (jets[point[0]] == point[1])
    for name, values in (train or {}).items():
        if name in jets.dtype.names and values:
            is_sig &= np.isin(jets[name], values)
    return is_sig


def signal_points(
    jets: np.ndarray, class_names: list[str], signal: str, parameters: list[str]
) -> list[tuple[str, float]]:
    """(parameter, value) of every value the signal jets have, for each of ``parameters`` the
    jets carry."""
    is_sig = jets["flavour_label"] == class_names.index(signal)
    return [
        (name, float(v))
        for name in parameters
        if name in jets.dtype.names
        for v in np.unique(jets[name][is_sig])
        if np.isfinite(v)
    ]


def point_prefix(jets: np.ndarray, model: str, signal: str, point: tuple[str, float]) -> str:
    """Column prefix of ``model`` at ``point``: its own ``{model}_{par}{value}`` columns when
    it was evaluated there (parameterised models), else the plain ``{model}`` columns."""
    own = f"{model}{point_tag(*point)}"
    return own if prob_column(own, signal) in jets.dtype.names else model


def roc_sets(
    jets: np.ndarray,
    model: str,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float],
    point: tuple[str, float] | None = None,
    parameters: list[str] | None = None,
    shared: bool = False,
    jet_weights: np.ndarray | None = None,
) -> dict[str, RocInputs]:
    """ROC inputs of ``model`` (at ``point``: see :func:`point_prefix`) and, where the toy truth
    exists, of the Bayes-optimal classifier; keyed ``model`` and ``BAYES``. A parameterised
    model's plain columns saw each jet at the value in ``{model}_{par}`` (one parameter): its
    Bayes-optimal reference is the likelihood ratio at that value, jet by jet."""
    labels = jets["flavour_label"]
    prefix = model if point is None else point_prefix(jets, model, signal, point)
    logp = model_logp(jets, prefix, class_names)
    out = {model: roc_inputs(logp, labels, class_names, signal, fractions, shared, jet_weights)}
    parameter, value = point if point is not None else (None, None)
    seen = f"{model}_{parameters[0]}" if parameters and len(parameters) == 1 else ""
    if point is None and seen in jets.dtype.names:
        parameter, value = parameters[0], jets[seen].astype(np.float64)
    truth = truth_logp(jets, class_names, signal, parameter, value)
    if truth is not None:
        out[BAYES] = roc_inputs(truth, labels, class_names, signal, fractions, shared, jet_weights)
    return out


def jet_field(jets: np.ndarray, field: str, where: str) -> np.ndarray:
    """A float jet field; a missing one is an error naming the config key ``where``."""
    if field not in jets.dtype.names:
        raise HepsnakeError(where, f"no jet field '{field}' in the predictions")
    return jets[field].astype(np.float64)


def finite(score: np.ndarray) -> np.ndarray:
    """``score`` with NaN and ±inf (jets a tagger did not score) below every finite score."""
    good = np.isfinite(score)
    low = float(score[good].min()) - 1.0 if good.any() else 0.0
    return np.where(good, score, low)


def reference_rocs(
    jets: np.ndarray,
    name: str,
    spec: ScoreTagger | ProbabilityTagger,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float],
    jet_weights: np.ndarray | None = None,
) -> RocInputs:
    """ROC inputs of reference tagger ``name``: its ``score`` field, or the discriminant of its
    per-class ``probabilities`` fields (classes of zero fraction may lack one); every ROC on the
    one score."""
    where = f"config: evaluate/reference_taggers/{name}"
    if isinstance(spec, ScoreTagger):
        score = finite(jet_field(jets, spec.score, where))
        labels = jets["flavour_label"]
        return {
            k: (score, w)
            for k, w in roc_weights(labels, class_names, fractions, jet_weights).items()
        }
    probs = spec.probabilities
    needed = [signal, *(b for b, f in fractions.items() if f > 0)]
    missing = [c for c in needed if c not in probs]
    if missing:
        raise HepsnakeError(f"{where}/probabilities", f"no field for class '{missing[0]}'")
    logp = {c: np.log(jet_field(jets, probs[c], where) + EPS) for c in needed}
    logp |= {b: np.full(len(jets), -np.inf) for b in fractions if b not in logp}
    labels = jets["flavour_label"]
    rocs = roc_inputs(logp, labels, class_names, signal, fractions, True, jet_weights)
    return {k: (finite(score), w) for k, (score, w) in rocs.items()}


def signal_weights(is_sig: np.ndarray, jet_weights: np.ndarray | None) -> np.ndarray | None:
    """The weights of the signal jets ``is_sig`` in a ROC (None: 1 each)."""
    return None if jet_weights is None else jet_weights[is_sig]


def curves(
    rocs: RocInputs, is_sig: np.ndarray, jet_weights: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(signal efficiency, rejection) of each ROC in ``rocs``, the signal jets ``is_sig``
    weighted by ``jet_weights`` (None: 1 each)."""
    ws = signal_weights(is_sig, jet_weights)
    return {
        name: rejection_curve(score[is_sig], score[w != 0], w[w != 0], ws)
        for name, (score, w) in rocs.items()
    }


# the signal efficiencies at which the metrics JSON stores each rejection curve
CURVE_EFFICIENCIES = np.linspace(0.005, 1.0, 200)
Curves = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # tagger → ROC → (eff, rej)


def stored_curves(taggers: Curves) -> dict[str, Any]:
    """Rejection curves as the metrics JSON stores them: ``efficiency`` (the shared
    :data:`CURVE_EFFICIENCIES`), ``rocs`` (the ROC names in order: JSON keys are sorted) and,
    per tagger and ROC, the rejection there (NaN, stored as null, outside the curve: where no
    background jet passes the cut)."""
    return {
        "efficiency": CURVE_EFFICIENCIES.tolist(),
        "rocs": list(next(iter(taggers.values()))),
        "rejection": {
            tagger: {
                name: np.interp(CURVE_EFFICIENCIES, eff, rej, left=np.nan, right=np.nan).tolist()
                for name, (eff, rej) in rocs.items()
            }
            for tagger, rocs in taggers.items()
        },
    }


def loaded_curves(stored: dict[str, Any], taggers: list[str]) -> Curves:
    """:func:`stored_curves` of ``taggers`` back as arrays (null → NaN)."""
    eff = np.asarray(stored["efficiency"], dtype=np.float64)
    rejection = stored["rejection"]
    return {
        tagger: {
            name: (eff, np.array(rejection[tagger][name], dtype=np.float64))  # None → NaN
            for name in stored["rocs"]
        }
        for tagger in taggers
    }


def roc_metrics(
    sets: dict[str, RocInputs],
    model: str,
    is_sig: np.ndarray,
    working_points: list[float],
    jet_weights: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """AUC of each ROC of ``model`` in ``sets`` (and rejections at ``working_points``), with
    the Bayes-optimal AUC and the gap to it when ``sets`` has the truth; the signal jets
    weighted by ``jet_weights`` (None: 1 each), and a ``note`` where the ROC needed one
    (:func:`~hepsnake.roc.roc`)."""
    out: dict[str, dict[str, Any]] = {}
    ws = signal_weights(is_sig, jet_weights)
    for name, (score, w) in sets[model].items():
        sig, bkg, wb = score[is_sig], score[w != 0], w[w != 0]
        curve = roc(sig, bkg, ws, wb)
        out[name] = {"auc": curve.auc}
        if curve.note:
            out[name]["note"] = curve.note
        if working_points:
            out[name]["rejection"] = rejection_at(sig, bkg, working_points, wb, ws)
        if BAYES in sets:
            bayes = sets[BAYES][name][0]
            out[name]["bayes_auc"] = auc(bayes[is_sig], bayes[w != 0], ws, wb)
            out[name]["auc_gap"] = out[name]["bayes_auc"] - out[name]["auc"]
    return out


@dataclass(frozen=True)
class RocBook:
    """Every ROC input of one model, built once: inclusive and at each parameter point, and
    of each reference tagger; ``jet_weights`` weigh the jets in every ROC (None: 1 each)."""

    model: str
    fractions: dict[str, float]
    inclusive: dict[str, RocInputs]
    points: dict[tuple[str, float], dict[str, RocInputs]]
    references: dict[str, RocInputs]
    jet_weights: np.ndarray | None = None


def roc_book(
    jets: np.ndarray,
    model: str,
    class_names: list[str],
    signal: str,
    fractions: dict[str, float] | None = None,
    parameters: list[str] | None = None,
    shared: bool = False,
    references: Mapping[str, ScoreTagger | ProbabilityTagger] | None = None,
    jet_weights: np.ndarray | None = None,
) -> RocBook:
    """:func:`roc_sets` of ``model``, inclusive and at every signal point of ``parameters``,
    and :func:`reference_rocs` of each of ``references``; ``fractions`` are the configured
    background fractions (None: equal, see :func:`background_fractions`); every jet weighs
    its ``jet_weights`` (None: 1; each class's must sum to a positive number)."""
    fractions = background_fractions(jets["flavour_label"], class_names, signal, fractions)
    args = (class_names, signal, fractions)
    return RocBook(
        model,
        fractions,
        roc_sets(jets, model, *args, None, parameters, shared, jet_weights),
        {
            p: roc_sets(jets, model, *args, p, parameters, shared, jet_weights)
            for p in signal_points(jets, class_names, signal, parameters or [])
        },
        {
            name: reference_rocs(jets, name, spec, *args, jet_weights)
            for name, spec in (references or {}).items()
        },
        jet_weights,
    )


def model_metrics(
    jets: np.ndarray,
    book: RocBook,
    class_names: list[str],
    signal: str,
    working_points: list[float],
    train: Values | None = None,
) -> dict[str, Any]:
    """AUCs and rejections, inclusive and per background class, of the model and of each
    reference tagger, and the model's AUCs per signal parameter value.

    Where the toy's ``truth_logp_*`` fields exist, the Bayes-optimal AUC on the same jets is
    given next to the model's.
    """
    is_sig = signal_mask(jets, class_names, signal, train)
    entries = roc_metrics(book.inclusive, book.model, is_sig, working_points, book.jet_weights)
    out: dict[str, Any] = {
        "n_test": len(jets),
        "fractions": book.fractions,
        INCLUSIVE: entries.pop(INCLUSIVE),
        "backgrounds": entries,
        "parameters": {},
        "reference_taggers": {},
    }
    for name, rocs in book.references.items():
        ref = roc_metrics({name: rocs}, name, is_sig, working_points, book.jet_weights)
        out["reference_taggers"][name] = {INCLUSIVE: ref.pop(INCLUSIVE), "backgrounds": ref}
    for (par, value), sets in book.points.items():
        at = signal_mask(jets, class_names, signal, point=(par, value))
        per = roc_metrics(sets, book.model, at, [], book.jet_weights)
        trained = (train or {}).get(par)
        unseen = bool(trained) and value not in trained
        out["parameters"].setdefault(par, {})[f"{value:g}"] = {"unseen": unseen} | per
    return out


SIGNED_PHYSICS = "signed physics weights"
ABS_PHYSICS = "|physics weights|"


def physics_weights(
    jets: np.ndarray, groups: dict[str, np.ndarray], where: str
) -> tuple[np.ndarray, str]:
    """The jets' signed physics weights (field ``weight``) and :data:`SIGNED_PHYSICS`; their
    magnitudes and a sentence why where the weights of a group of jets (name → mask) do not
    sum to a positive number (a yield must be positive)."""
    weights = jet_field(jets, "weight", where)
    for name, mask in groups.items():
        total = weights[mask].sum()
        if mask.any() and not total > 0:
            return np.abs(weights), f"{ABS_PHYSICS}: the {name} weights sum to {total:.4g}"
    return weights, SIGNED_PHYSICS


def data_mc_weights(jets: np.ndarray) -> tuple[np.ndarray, str]:
    """Data/MC weights of control-region jets: 1 for data, MC jets their
    :func:`physics_weights` (each side is normalised by the K-S test and the plot)."""
    is_data = jets["is_data"].astype(bool)
    mc, used = physics_weights(jets, {"MC": ~is_data}, "control_jets")
    return np.where(is_data, 1.0, mc), f"data 1, MC {used}"


def control_ks(
    jets: np.ndarray, model: str, class_names: list[str], weights: np.ndarray
) -> dict[str, dict[str, float]]:
    """Weighted data/MC K-S distance and p-value of every class output in the control region
    (``weights``: :func:`data_mc_weights`)."""
    is_data = jets["is_data"].astype(bool)
    out = {}
    for c in class_names:
        values = jets[prob_column(model, c)]
        d, p = weighted_ks(values[is_data], values[~is_data], weights[is_data], weights[~is_data])
        out[c] = {"ks": d, "p_value": p}
    return out


def sb_scan(
    score: np.ndarray, is_sig: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, S/√B) with (signed) weighted yields above each cut; the background yield is
    floored at that of one jet of mean |weight|, so S/√B stays finite."""
    cuts = np.quantile(score, np.linspace(0.0, 0.995, 200))
    order = np.argsort(score)
    s_cum = np.cumsum((weights * is_sig)[order][::-1])[::-1]
    b_cum = np.cumsum((weights * ~is_sig)[order][::-1])[::-1]
    index = np.searchsorted(score[order], cuts, side="left")
    s, b = s_cum[index], b_cum[index]
    floor = np.abs(weights[~is_sig]).mean() if np.any(~is_sig) else 1.0
    return cuts, s / np.sqrt(np.maximum(b, floor if floor > 0 else 1.0))


def physical_weights(jets: np.ndarray, setting: bool | None) -> tuple[bool, str]:
    """Whether the jets' ``weight`` makes S/√B a yield ratio, and why not: ``setting`` true or
    false decides; null (auto) says no when the weights are absent or all 1. Negative weights
    (NLO generators) are physical: yields are signed sums."""
    if setting is False:
        return False, "evaluate.physical_weights is false"
    if "weight" not in jets.dtype.names:
        return False, "the jets have no weight field"
    weights = jets["weight"]
    if setting:
        return True, ""
    if np.all(weights == 1):
        return False, "every weight is 1 (unweighted jets)"
    return True, ""


ROC_JETS = "jets: each test jet counts once, the background classes mixed by the fractions"


def roc_jet_weights(
    jets: np.ndarray, class_names: list[str], setting: str
) -> tuple[np.ndarray | None, str]:
    """The weight of every jet in the ROCs (None: each counts once) and what they are, as
    ``evaluate.roc_weights`` asks: ``jets``, or ``physical``: the signed physics weights, or
    their |w| where a class's do not sum to a positive number."""
    if setting == "jets":
        return None, ROC_JETS
    labels = jets["flavour_label"]
    groups = {c: labels == i for i, c in enumerate(class_names)}
    weights, used = physics_weights(jets, groups, "config: evaluate/roc_weights")
    return weights, f"{used}, the background classes mixed by the fractions"


def constant_output(jets: np.ndarray, model: str, class_names: list[str]) -> dict[str, float]:
    """The largest share of test jets with one identical output vector, and its signal-class
    probability (e.g. every jet without constituents scored alike)."""
    outputs = np.stack([jets[prob_column(model, c)] for c in class_names], axis=1)
    if not len(outputs):
        return {"fraction": 0.0}
    values, counts = np.unique(outputs, axis=0, return_counts=True)
    top = int(np.argmax(counts))
    return {"fraction": float(counts[top] / len(outputs)), "outputs": values[top].tolist()}


def pt_panels(pt: np.ndarray, edges: list[float], unit: str) -> dict[str, np.ndarray]:
    """Jet masks of each pt bin [lo, hi), labelled with ``unit``."""
    return {
        f"{lo:g} ≤ pt < {hi:g} {unit}": (pt >= lo) & (pt < hi)
        for lo, hi in itertools.pairwise(edges)
    }


def binned_auc(
    score: np.ndarray,
    weights: np.ndarray,
    is_sig: np.ndarray,
    panels: dict[str, np.ndarray],
    jet_weights: np.ndarray | None = None,
) -> list[float | None]:
    """Inclusive AUC in each panel (None where it has no signal or no background); the
    background jets weigh ``weights``, the signal jets ``jet_weights`` (None: 1)."""
    out: list[float | None] = []
    for sel in panels.values():
        sig, bkg = is_sig & sel, (weights != 0) & sel
        ws = signal_weights(sig, jet_weights)
        out.append(
            auc(score[sig], score[bkg], ws, weights[bkg]) if sig.any() and bkg.any() else None
        )
    return out


def binned_efficiency(
    score: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    signal: str,
    is_sig: np.ndarray,
    panels: dict[str, np.ndarray],
    wp: float,
) -> dict[str, Any]:
    """Per panel (pt bin), at the inclusive cut keeping ``wp`` of the signal: the signal
    efficiency and each background class's rejection, with binomial uncertainties (None where
    a bin has no such jet; rejection None where none passes), as puma's efficiency-vs-pt."""
    cut = float(np.quantile(score[is_sig], 1 - wp))
    out: dict[str, Any] = {"working_point": wp, "cut": cut, "signal": [], "rejection": {}}
    for sel in panels.values():
        n = int(np.sum(is_sig & sel))
        eff = float(np.mean(score[is_sig & sel] > cut)) if n else None
        err = float(np.sqrt(eff * (1 - eff) / n)) if n else None
        out["signal"].append({"efficiency": eff, "uncertainty": err})
    backgrounds = [c for i, c in enumerate(class_names) if c != signal and np.any(labels == i)]
    for b in backgrounds:
        is_b = labels == class_names.index(b)
        rows = []
        for sel in panels.values():
            n = int(np.sum(is_b & sel))
            eps = float(np.mean(score[is_b & sel] > cut)) if n else 0.0
            rej = 1 / eps if eps > 0 else None
            err = rej * np.sqrt((1 - eps) / (eps * n)) if rej is not None else None
            rows.append({"rejection": rej, "uncertainty": err})
        out["rejection"][b] = rows
    return out


def parameter_scan(
    jets: np.ndarray,
    book: RocBook,
    names: list[str],
    signal: str,
    is_sig: np.ndarray,
    wp: float,
) -> tuple[dict[str, Any], dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Each parameter point's signal efficiency at the background efficiency that working
    point ``wp`` has on the inclusive ROC (signal ``is_sig``), and each point's ROC curves; a
    parameterised model is scored at each point (:func:`roc_sets`)."""
    score, mixed = book.inclusive[book.model][INCLUSIVE]
    bkg = mixed != 0
    inclusive = roc(score[is_sig], score[bkg], signal_weights(is_sig, book.jet_weights), mixed[bkg])
    eps_b = float(np.interp(wp, inclusive.tpr, inclusive.fpr))
    point_curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    efficiency: dict[str, dict[str, float]] = {}
    for (par, value), sets in book.points.items():
        at = signal_mask(jets, names, signal, point=(par, value))
        for label, rocs in sets.items():
            point_curves[f"{label} {par}={value:g}"] = curves(rocs, at, book.jet_weights)
        score = sets[book.model][INCLUSIVE][0]
        point = roc(score[at], score[bkg], signal_weights(at, book.jet_weights), mixed[bkg])
        efficiency.setdefault(par, {})[f"{value:g}"] = float(np.interp(eps_b, point.fpr, point.tpr))
    entry = {"working_point": wp, "background_efficiency": eps_b, "efficiency": efficiency}
    return entry, point_curves


def trained_values(train: Values) -> str:
    """`` at mS ∈ {5, 16, 55}`` for the training values of each parameter ('' without)."""
    parts = [f"{n} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for n, vs in train.items() if vs]
    return f" at {', '.join(parts)}" if parts else ""
