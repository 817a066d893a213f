"""The report's warnings: what a reviewer would raise about a run, each with what to do.

Two sources. Stages write what they find into the ``warnings`` list of their summaries and
metrics, ``{"code", "message", "advice"}`` (:func:`stage_findings`); the checks below look at
what the stages wrote (training histories, evaluation metrics, conversion and split summaries,
export validation), with the thresholds of the config's ``report`` section. A check whose code
a stage already reported for the same subject is left out (:func:`without`).
"""

import itertools
import math
from dataclasses import dataclass
from typing import Any

from hepsnake.config.contracts import EvaluateSpec, ReportContract, ReportSpec
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.metrics import INCLUSIVE
from hepsnake.negative_weights import policy_text

DATASET = "dataset"  # the subject of findings about samples and splits, not one model

# how the report titles each code (a stage's own codes are shown as written, '_' → ' ')
TITLES = {
    "not_converged": "not converged",
    "overfitting": "overfitting",
    "no_improvement": "no improvement after epoch 0",
    "ks_gate": "K-S gate never passed",
    "data_mc": "data/MC disagreement",
    "worse_than_random": "AUC below 0.5",
    "constant_output": "constant output",
    "pt_bins": "pt bins miss the jets",
    "export_check": "export check failed",
    "negative_weights": "negative weights",
    "few_jets": "few jets in a class",
    "skipped_file": "input file skipped",
    "truncated_constituents": "constituents truncated",
    "dropped_jets": "jets dropped",
}


@dataclass(frozen=True)
class Finding:
    """One warning: its ``subject`` (:data:`DATASET` or a model name), a short ``code``, what
    was found (with numbers) and what to do about it."""

    subject: str
    code: str
    message: str
    advice: str

    @property
    def title(self) -> str:
        return TITLES.get(self.code, self.code.replace("_", " "))


def stage_findings(subject: str, data: dict[str, Any], path: str) -> list[Finding]:
    """The ``warnings`` a stage wrote into ``data`` (read from ``path``)."""
    entries = data.get("warnings", [])
    if not isinstance(entries, list):
        raise HepsnakeError(path, "'warnings' is not a list")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"code", "message"} <= set(entry):
            raise HepsnakeError(path, f"warnings[{i}] is not a {{code, message, advice}} object")
        out.append(Finding(subject, entry["code"], entry["message"], entry.get("advice", "")))
    return out


def without(findings: list[Finding], reported: list[Finding]) -> list[Finding]:
    """``findings`` whose (subject, code) is not among ``reported``'s: what ``reported``
    leaves to say (a report check after a stage's warning, an earlier stage's after a
    later one's of the same code)."""
    seen = {(f.subject, f.code) for f in reported}
    return [f for f in findings if (f.subject, f.code) not in seen]


# -- training ---------------------------------------------------------------------------------


def not_converged(model: str, history: dict[str, Any], tail: float, falling: int) -> list[Finding]:
    """The best epoch is in the last ``tail`` share of the epochs (at least the last one) of a
    run that used all its ``max_epochs`` (early stopping did not end it), or the validation
    loss fell in each of the last ``falling`` epochs."""
    epochs = history["epochs"]
    n, best = len(epochs), history["best_epoch"]
    if not n or best is None:
        return []
    stopped_early = history.get("max_epochs") is not None and n < history["max_epochs"]
    last = max(1, math.ceil(tail * n))
    late = any(e.get("epoch") == best for e in epochs[n - last :])
    why = ""
    if not stopped_early and late:
        why = f"its best epoch ({best}) is among the last {last} of its {n} epochs"
    losses = [e.get("val_loss") for e in epochs[-(falling + 1) :]]
    complete = len(losses) == falling + 1 and None not in losses
    if complete and all(b < a for a, b in itertools.pairwise(losses)):
        fell = f"the validation loss fell in each of the last {falling} epochs"
        fell += f" ({losses[0]:.4g} → {losses[-1]:.4g})"
        why = f"{why}, and {fell}" if why else fell
    if not why:
        return []
    return [
        Finding(
            model,
            "not_converged",
            f"{why}: it was still improving when training stopped",
            "train longer: raise max_epochs (training_overrides.max_epochs, or training."
            "max_epochs in the model's config) and keep training.early_stopping on, so the run"
            " ends once the validation loss stops falling",
        )
    ]


def overfitting(model: str, history: dict[str, Any], rising: int, rise: float) -> list[Finding]:
    """The validation loss rose while the training loss fell in each of ``rising`` (or more)
    consecutive epochs, by more than ``rise`` (relative) over that stretch: noise around a
    plateau does not count. The stretch of the largest rise is reported."""
    epochs = [
        e
        for e in history["epochs"]
        if e.get("val_loss") is not None and e.get("train_loss") is not None
    ]
    stretches = []  # (first, last) index of each stretch of val up, train down
    start = 0
    for i in range(1, len(epochs) + 1):
        apart = i < len(epochs) and (
            epochs[i]["val_loss"] > epochs[i - 1]["val_loss"]
            and epochs[i]["train_loss"] < epochs[i - 1]["train_loss"]
        )
        if not apart:
            stretches.append((start, i - 1))
            start = i

    def growth(stretch: tuple[int, int]) -> float:
        first, last = (epochs[i]["val_loss"] for i in stretch)
        return (last - first) / abs(first) if first else math.inf

    found = [s for s in stretches if s[1] - s[0] >= rising and growth(s) > rise]
    if not found:
        return []
    first, last = (epochs[i] for i in max(found, key=growth))
    return [
        Finding(
            model,
            "overfitting",
            f"from epoch {first['epoch']} to {last['epoch']} the validation loss rose by"
            f" {growth(max(found, key=growth)):.1%} ({first['val_loss']:.4g} →"
            f" {last['val_loss']:.4g}) while the training loss fell ({first['train_loss']:.4g}"
            f" → {last['train_loss']:.4g}); best.ckpt is epoch {history['best_epoch']}",
            "the model learns the training jets rather than the classes: more training data,"
            " more regularisation (training.weight_decay, a smaller model) or an earlier stop"
            " (training.early_stopping.patience)",
        )
    ]


def no_improvement(model: str, metrics: dict[str, Any]) -> list[Finding]:
    """The best epoch is 0 of several."""
    training = metrics["training"]
    if training["best_epoch"] != 0 or training.get("epochs", 2) < 2:
        return []
    return [
        Finding(
            model,
            "no_improvement",
            "its best epoch is 0: the validation loss never improved after the first epoch",
            "lower the learning rate (training.lr) and check the inputs (norm dict, NaN or"
            " constant variables)",
        )
    ]


def ks_gate(model: str, metrics: dict[str, Any]) -> list[Finding]:
    """An adversarial model none of whose epochs passed the K-S gate."""
    if not metrics["training"].get("gate_fallback"):
        return []
    return [
        Finding(
            model,
            "ks_gate",
            "no epoch passed the K-S gate: best.ckpt is the epoch of lowest validation loss",
            "strengthen the adversary (adversarial.lambda, k_steps) or train longer",
        )
    ]


# -- evaluation -------------------------------------------------------------------------------


ROC_NAMES = {INCLUSIVE: "all backgrounds"}  # how the report names each ROC, if not as its key


def roc_entries(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The inclusive ROC entry of a metrics file (or of one reference tagger in it), then one
    per background class."""
    return {INCLUSIVE: metrics[INCLUSIVE], **metrics["backgrounds"]}


def data_mc(
    model: str, metrics: dict[str, Any], p_value: float, adversarial: bool = False
) -> list[Finding]:
    """A data/MC K-S p-value below ``p_value`` on any class output (control region); the
    advice to an ``adversarial`` model is a stronger adversary."""
    bad = {
        c: v
        for c, v in metrics.get("control_ks", {}).items()
        if v["p_value"] is not None and v["p_value"] < p_value
    }
    if not bad:
        return []
    outputs = ", ".join(
        f"p_{c} (K-S {v['ks']:.3g}, p = {v['p_value']:.2g})" for c, v in bad.items()
    )
    advice = (
        "its adversary has not removed what the simulation gets wrong: raise"
        " adversarial.lambda or k_steps (the K-S gate, adversarial.ks_threshold, judges the"
        " distance; this check its significance), or fix the mismodelled input"
        if adversarial
        else "the model relies on something the simulation gets wrong: train it with an"
        " adversary (an adversarial: block in its model config), or find and fix the"
        " mismodelled input"
    )
    found = f"data and MC differ in the control region (K-S p < {p_value:g}) on {outputs}"
    return [Finding(model, "data_mc", found, advice)]


def worse_than_random(model: str, metrics: dict[str, Any]) -> list[Finding]:
    """An AUC (inclusive or against any background) below 0.5."""
    low = {n: e["auc"] for n, e in roc_entries(metrics).items() if e["auc"] is not None}
    low = {n: a for n, a in low.items() if a < 0.5}
    if not low:
        return []
    aucs = ", ".join(f"{a:.4f} vs {ROC_NAMES.get(n, n)}" for n, a in low.items())
    return [
        Finding(
            model,
            "worse_than_random",
            f"AUC {aucs}: worse than random",
            "check the class labels (samples' label, prepare.label_map) and evaluate.signal;"
            " an AUC below 0.5 means swapped classes or a model that learnt nothing",
        )
    ]


def constant_output(model: str, metrics: dict[str, Any], fraction: float) -> list[Finding]:
    """More than ``fraction`` of the test jets get one identical output vector."""
    share = metrics.get("constant_output", {})
    if share.get("fraction", 0.0) <= fraction:
        return []
    outputs = ", ".join(f"{p:.5g}" for p in share["outputs"])
    return [
        Finding(
            model,
            "constant_output",
            f"{share['fraction']:.1%} of the test jets get one identical output ({outputs})",
            "these jets look alike to the model: look for jets without constituents and for"
            " inputs that are constant, NaN-filled or badly normalised",
        )
    ]


def pt_bins(model: str, metrics: dict[str, Any]) -> list[Finding]:
    """The ``evaluate.pt_bins`` hold fewer than half of the test jets."""
    bins = metrics.get("pt_bins", {})
    if bins.get("fraction_inside", 1.0) >= 0.5:
        return []
    edges = ", ".join(f"{e:g}" for e in bins["edges"])
    return [
        Finding(
            model,
            "pt_bins",
            f"the pt bins [{edges}] {bins['unit']} hold only {bins['fraction_inside']:.0%} of"
            " the test jets",
            f"set evaluate.pt_bins in {bins['unit']}, the jets' energy unit",
        )
    ]


def export_checks(model: str, validation: dict[str, Any], auc_change: float) -> list[Finding]:
    """A validation check of the export that did not pass, or an int8 model whose signal AUC
    differs from the fp32 model's by more than ``auc_change``."""
    out = [
        Finding(
            model,
            "export_check",
            f"the {name} check of the ONNX export did not pass",
            "see results/export/<model>/validation.json; do not ship this export",
        )
        for name, check in validation.items()
        if isinstance(check, dict) and check.get("passed") is False
    ]
    delta = validation.get("int8", {}).get("auc_delta")
    if delta is not None and abs(delta) > auc_change:
        out.append(
            Finding(
                model,
                "export_check",
                f"the int8 model's signal AUC differs from the fp32 model's by {delta:+.4f}"
                f" (more than {auc_change:g})",
                "calibrate the quantisation (export.quantise: static) or use the fp32 model",
            )
        )
    return out


# -- dataset ----------------------------------------------------------------------------------


def conversion(summary: dict[str, Any]) -> list[Finding]:
    """Files skipped and constituents truncated in one sample's conversion."""
    sample = summary["sample"]
    out = [
        Finding(
            DATASET,
            "skipped_file",
            f"sample {sample}: skipped {s['reason']}",
            "fix or remove the file: convert.skip_bad_files hides it from every later stage",
        )
        for s in summary.get("skipped", [])
    ]
    if summary.get("truncated_constituents"):
        out.append(
            Finding(
                DATASET,
                "truncated_constituents",
                f"sample {sample}: {summary['truncated_constituents']} constituents truncated",
                "raise convert.max_constituents (and inputs.num_inputs) if the constituents"
                " beyond the limit matter",
            )
        )
    return out


def dropped_jets(where: str, dropped: dict[str, Any]) -> list[Finding]:
    """One finding per reason of a summary's ``dropped`` {reason: jets} (nested per sample or
    stage allowed) with jets dropped."""
    out = []
    for reason, count in dropped.items():
        if isinstance(count, dict):
            out += dropped_jets(f"{where}, {reason}", count)
        elif count:
            out.append(
                Finding(
                    DATASET,
                    "dropped_jets",
                    f"{where}: {count} jets dropped ({reason})",
                    "check that this selection is meant (convert.cuts, prepare.label_map)",
                )
            )
    return out


def negative_weights(
    samples: dict[str, dict[str, float] | None], policy: str | None, test_jets: int
) -> list[Finding]:
    """Samples with negative weights (their share of jets and of Σ|w|), and the policy the
    training applied; ``test_jets`` with negative weights where no sample gives figures."""
    shares = {s: f for s, f in samples.items() if f and f.get("fraction")}
    if not shares and not test_jets:
        return []
    if shares:
        found = "; ".join(
            f"sample {s}: {f['fraction']:.1%} of the jets, {f['abs_share']:.1%} of Σ|w|"
            for s, f in shares.items()
        )
    else:
        found = f"{test_jets} test jets"
    applied = (
        f"training weights: {policy_text(policy)}"
        if policy
        else "no prepare.negative_weights policy: training used the weights as they are"
    )
    return [
        Finding(
            DATASET,
            "negative_weights",
            f"negative weights ({found}); {applied}",
            "check that the policy suits the samples (config/README.md, prepare); the report's"
            " S/√B and efficiencies say which weights they use, and a large share of Σ|w|"
            " lowers the effective statistics",
        )
    ]


def few_jets(split: dict[str, Any], class_names: list[str], minimum: int) -> list[Finding]:
    """Classes with fewer than ``minimum`` jets in the val or test split (the split stage
    warns about the training jets itself: ``rare_class``, ``prepare.min_class_jets``)."""
    if split.get("kind", "main") != "main":
        return []
    out = []
    for part in ("val", "test"):
        counts = dict.fromkeys(class_names, 0)
        for row in split["rows"]:
            if row["split"] == part and row["class"] in counts:
                counts[row["class"]] += row["jets"]
        out += [
            Finding(
                DATASET,
                "few_jets",
                f"class {c}: {n} jets in the {part} split (fewer than {minimum})",
                "simulate or select more jets of this class, or give val and test a larger"
                " prepare.fractions: its figures have large statistical errors",
            )
            for c, n in counts.items()
            if n < minimum
        ]
    return out


# -- every check ------------------------------------------------------------------------------


def model_checks(
    model: str,
    history: dict[str, Any],
    metrics: dict[str, Any],
    validation: dict[str, Any] | None,
    limits: ReportSpec,
    evaluate: EvaluateSpec,
) -> list[Finding]:
    """The report's checks of one model: its training ``history``, evaluate ``metrics`` and
    export ``validation`` (None: not exported), with the config's ``report`` ``limits`` and
    ``evaluate`` section."""
    out = not_converged(model, history, limits.converged_tail, limits.still_falling_epochs)
    out += overfitting(model, history, limits.overfitting_epochs, limits.overfitting_rise)
    out += no_improvement(model, metrics)
    out += ks_gate(model, metrics)
    adversarial = any("val_ks_pass" in e for e in history["epochs"])  # its K-S gate ran
    out += data_mc(model, metrics, limits.ks_p_value, adversarial)
    out += worse_than_random(model, metrics)
    out += constant_output(model, metrics, evaluate.constant_fraction)
    out += pt_bins(model, metrics)
    if validation is not None:
        out += export_checks(model, validation, limits.int8_auc_delta)
    return out


def dataset_checks(
    summaries: list[dict[str, Any]],
    split: dict[str, Any],
    negative: dict[str, dict[str, float] | None],
    test_negative: int,
    contract: ReportContract,
) -> list[Finding]:
    """The report's checks of the conversion ``summaries`` and the ``split`` summary, with
    each sample's ``negative`` weight figures (``test_negative``: test jets with w < 0) and
    the report's ``contract`` (classes, evaluate settings, the negative-weight policy)."""
    out = []
    for summary in summaries:
        out += conversion(summary)
        out += dropped_jets(f"sample {summary['sample']}", summary.get("dropped", {}))
    out += dropped_jets("split", split.get("dropped", {}))
    out += few_jets(split, list(contract.class_names), contract.evaluate.min_class_jets)
    out += negative_weights(negative, contract.negative_weights, test_negative)
    return out


# -- the section ------------------------------------------------------------------------------


def headline(findings: list[Finding]) -> str:
    """The one line at the top of the report: how many warnings, of which kinds, about what."""
    if not findings:
        return "0 warnings."
    about: dict[str, list[str]] = {}
    for f in findings:
        about.setdefault(f.title, [])
        if f.subject not in about[f.title]:
            about[f.title].append(f.subject)
    kinds = "; ".join(f"{title} ({', '.join(subjects)})" for title, subjects in about.items())
    plural = "s" if len(findings) > 1 else ""
    return f"**{len(findings)} warning{plural}**: {kinds}. See [Warnings](#warnings)."


def section(findings: list[Finding]) -> list[str]:
    """The Warnings section: the dataset's findings, then each model's, one line each."""
    lines = ["## Warnings", ""]
    if not findings:
        return [*lines, "- none", ""]
    subjects = dict.fromkeys(f.subject for f in findings)
    for subject in sorted(subjects, key=lambda s: s != DATASET):
        lines += ["### Dataset" if subject == DATASET else f"### Model `{subject}`", ""]
        for f in findings:
            if f.subject == subject:
                advice = f" *What to do:* {f.advice.rstrip('.')}." if f.advice else ""
                lines.append(f"- **{f.title}**: {f.message.rstrip('.')}.{advice}")
        lines.append("")
    return lines
