"""Cross-field checks of a config the schema cannot express: named classes exist, fractions
sum to 1, label-map classes do not overlap, no credentials in URLs, no file listed twice."""

import os
from collections.abc import Callable
from typing import Any

from hepsnake.config.samples import expand_files
from hepsnake.config.schema import Origin, Where
from hepsnake.errors import HepsnakeError
from hepsnake.io.remote import (
    HOW_TO_PASS,
    SECRET_QUERY_KEYS,
    embedded_credentials,
    is_remote,
    redact_url,
)
from hepsnake.prepare.guard import forbidden_reason


def refuse_url_secret(url: str | None, where: str) -> None:
    """Refuse a storage or tracking URL that carries a password or token (Snakemake records
    params, logs keep commands): the database driver or MLflow reads it from the environment."""
    from urllib.parse import parse_qsl, urlsplit

    if not url:
        return
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    query = [k for k, v in parse_qsl(parts.query) if v and SECRET_QUERY_KEYS.search(k)]
    if (at and ":" in userinfo) or query:
        raise HepsnakeError(
            where,
            "embeds a password or token: set it in the environment (MLFLOW_TRACKING_TOKEN,"
            " MLFLOW_TRACKING_PASSWORD, PGPASSWORD or ~/.pgpass), never in the config",
        )


def check_evaluate(config: dict[str, Any], origin: Origin) -> None:
    """The classes ``evaluate`` names are classes, its ratio reference a tagger or model: caught
    when the DAG is built, not in the evaluate job after training."""
    ev, classes = config["evaluate"], config["class_names"]
    named = [(("signal",), ev.get("signal"))]
    named += [(("fractions", c), c) for c in ev.get("fractions") or {}]
    for tagger, spec in (ev.get("reference_taggers") or {}).items():
        named += [
            (("reference_taggers", tagger, "probabilities", c), c)
            for c in spec.get("probabilities", {})
        ]
    for path, name in named:
        if name is not None and name not in classes:
            raise HepsnakeError(
                origin.where("evaluate", *path), f"'{name}' is not one of class_names {classes}"
            )
    taggers = [*(ev.get("reference_taggers") or {}), *config["models"]]
    if ev.get("ratio_reference") and ev["ratio_reference"] not in taggers:
        raise HepsnakeError(
            origin.where("evaluate", "ratio_reference"),
            f"'{ev['ratio_reference']}' is neither a reference tagger nor a model {taggers}",
        )


def check_parameters(config: dict[str, Any], origin: Origin) -> None:
    """A sample parameter (``params``) is not a jet input: samples without it hold NaN, and
    parameterised models read it through their ``parameters`` block."""
    params = {p for s in config["samples"] for p in s["params"]}
    for i, variable in enumerate(config["inputs"]["variables"].get("jets", [])):
        if variable in params:
            raise HepsnakeError(
                origin.where("inputs", "variables", "jets", i),
                f"'{variable}' is a sample parameter (samples' params), not a jet input: remove"
                " it; a parameterised model gets it from its model config's parameters.names",
            )


def check_prepare(config: dict[str, Any], origin: Origin | None = None) -> None:
    """Cross-field checks of ``prepare`` (needs ``class_names``); also run by the split job.

    The fractions cover train, val and test and sum to 1; ``pt_to_signal`` reweighting names
    a target class; resampling replaces kinematic reweighting and class balancing, so it
    excludes them; the label map's classes exist and do not overlap.
    """
    where = (origin or Origin()).where
    prep = config["prepare"]
    fractions = prep["fractions"]
    if set(fractions) != {"train", "val", "test"}:
        raise HepsnakeError(where("prepare", "fractions"), "needs exactly train, val and test")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        raise HepsnakeError(where("prepare", "fractions"), f"sum to {total:g}, not 1")
    weights = prep["weights"]
    if weights["mode"] == "pt_to_signal":
        if "target" not in weights:
            raise HepsnakeError(
                where("prepare", "weights", "target"),
                "required with mode pt_to_signal: the class the backgrounds are reweighted to",
            )
        if weights["target"] not in config["class_names"]:
            raise HepsnakeError(
                where("prepare", "weights", "target"),
                f"'{weights['target']}' is not one of class_names {config['class_names']}",
            )
    if prep["resample"] != "none" and (weights["mode"] != "none" or weights["balance_classes"]):
        raise HepsnakeError(
            where("prepare", "resample"),
            f"'{prep['resample']}' resampling replaces the weights: set weights.mode: none"
            " and weights.balance_classes: false",
        )
    if prep.get("label_map"):
        check_label_map(prep["label_map"], config["class_names"], where)


def label_intervals(spec: list[Any] | dict[str, Any]) -> list[tuple[float, float]]:
    """A label-map class's values and ``{range: [lo, hi]}`` items as intervals: a value v is
    ``(v, v)``, a range the half-open ``[lo, hi)``."""
    items = spec if isinstance(spec, list) else [spec]
    return [
        (float(i["range"][0]), float(i["range"][1])) if isinstance(i, dict) else (i, i)
        for i in items
    ]


def check_label_map(label_map: dict[str, Any], class_names: list[str], where: Where) -> None:
    """Each class of ``label_map.map`` is a class name or ``drop``; each range has lo < hi; no
    value falls in two classes."""
    seen: list[tuple[str, tuple[float, float]]] = []
    for cls, spec in label_map["map"].items():
        at = where("prepare", "label_map", "map", cls)
        if cls != "drop" and cls not in class_names:
            raise HepsnakeError(at, f"'{cls}' is not one of class_names {class_names} or 'drop'")
        items = spec if isinstance(spec, list) else [spec]
        for item, interval in zip(items, label_intervals(spec), strict=True):
            if isinstance(item, dict) and not interval[0] < interval[1]:
                raise HepsnakeError(at, f"range {item['range']} is empty (needs lo < hi)")
            clash = next((c for c, other in seen if overlap(interval, other)), None)
            if clash is not None:
                raise HepsnakeError(at, f"{item} is also in class '{clash}'")
            seen.append((cls, interval))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two label intervals share a value (a point ``[v, v]`` is the value v)."""

    def contains(interval: tuple[float, float], v: float) -> bool:
        lo, hi = interval
        return v == lo if lo == hi else lo <= v < hi

    if a[0] == a[1]:
        return contains(b, a[0])
    if b[0] == b[1]:
        return contains(a, b[0])
    return a[0] < b[1] and b[0] < a[1]


def check_sample(config: dict[str, Any], sample: dict[str, Any], where: Where) -> None:
    """Cross-field checks the schema cannot express."""
    if sample["reader"] not in config["readers"]:
        raise HepsnakeError(
            where("reader"),
            f"unknown reader '{sample['reader']}' (readers: {', '.join(config['readers'])})",
        )
    label = sample.get("label")
    if sample["role"] == "control":
        if label not in ("data", "mc"):
            raise HepsnakeError(where("label"), "a control sample needs label 'data' or 'mc'")
    elif label is not None and label not in config["class_names"]:
        raise HepsnakeError(
            where("label"), f"label '{label}' is not one of class_names {config['class_names']}"
        )


def refuse_credentials(config: dict[str, Any]) -> None:
    """Raise naming the sample if a file URL embeds a secret, which Snakemake would record
    (its command lines, logs and ``.snakemake/`` metadata): say how to pass it instead."""
    for sample in config["samples"]:
        for url in sample["files"]:
            secret = embedded_credentials(url)
            if secret:
                raise HepsnakeError(
                    f"config: samples: {sample['name']}: files",
                    f"'{redact_url(url)}' embeds {secret}; {HOW_TO_PASS}",
                )


SWITCH = "set prepare.deduplicate: true to keep the first copy only"


def place(sample: str, other: str) -> str:
    """How a second copy is found: in another sample, or again in the same one."""
    return (
        f"twice in sample '{sample}'" if sample == other else f"in samples '{other}' and '{sample}'"
    )


def refuse_duplicate_files(config: dict[str, Any]) -> None:
    """Raise naming the file and both samples if a file (resolved path, or URL) is listed twice."""
    if config["prepare"]["deduplicate"]:
        return
    seen: dict[str, str] = {}
    for sample in config["samples"]:
        for path in expand_files(sample["name"], sample["files"]):
            key = path if is_remote(path) else os.path.realpath(path)
            if key in seen:
                raise HepsnakeError(
                    f"config: samples: {sample['name']}",
                    f"file '{redact_url(path)}' is listed {place(sample['name'], seen[key])} "
                    f"(a train/test leak; {SWITCH})",
                )
            seen[key] = sample["name"]


def check_inputs(
    inputs: dict[str, Any],
    label_source: str | None = None,
    where: Callable[..., str] | None = None,
) -> None:
    """Raise naming the first forbidden training variable, unless ``allow_truth_inputs``.

    ``label_source`` (the ``prepare.label_map`` variable) is truth too; ``where`` turns the
    key path into the error's ``FILE: key/path`` (default ``config: key/path``).
    """
    if inputs["allow_truth_inputs"]:
        return
    for collection, variables in inputs["variables"].items():
        for i, variable in enumerate(variables):
            reason = forbidden_reason(variable, inputs["truth"], label_source)
            if reason:
                at = (
                    where("inputs", "variables", collection, i)
                    if where
                    else f"config: inputs/variables/{collection}/{variable}"
                )
                raise HepsnakeError(
                    at,
                    f"truth leak: '{variable}' {reason} (set inputs.allow_truth_inputs to allow)",
                )
