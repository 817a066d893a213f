"""Load and validate the workflow config; cut it into the slice each stage needs."""

import contextlib
import copy
import csv
import functools
import glob
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from hepsnake.errors import HepsnakeError
from hepsnake.io.expressions import check as check_expression
from hepsnake.prepare.guard import check_inputs

SCHEMA = Path(__file__).with_name("config.schema.yaml")
MODEL_SCHEMA = Path(__file__).with_name("model.schema.yaml")
TUNE_SCHEMA = Path(__file__).with_name("tune.schema.yaml")
# a study's keys no trial job reads (changing them reruns no trial)
TUNE_DAG_KEYS = ("n_trials", "n_parallel", "file", "description")
SAMPLE_COLUMNS = ("name", "files", "reader", "tree", "role", "label", "params", "xsec")
REMOTE_PREFIXES = ("root://", "s3://", "http://", "https://", "xroot://")
UNNAMED = "config"  # names a config no file holds (a dict built in code, a stage's JSON slice)

Where = Callable[..., str]  # key path → the "FILE: key/path" of an error line


class Origin:
    """The files merged into one config, lowest precedence first: names the file of an error."""

    def __init__(self, layers: Sequence[tuple[str, Any]] = ()) -> None:
        self.layers = [(name, copy.deepcopy(data)) for name, data in layers]

    def file(self, path: Sequence[str | int]) -> str:
        """The last file that sets the longest prefix of ``path`` (``config`` without files)."""
        best, depth = UNNAMED, -1
        for name, data in self.layers:
            d = prefix_depth(data, path)
            if d >= depth:
                best, depth = name, d
        return best

    def where(self, *path: str | int) -> str:
        """``FILE: key/path``, the ``where`` of a :class:`HepsnakeError`."""
        return f"{self.file(path)}: {'/'.join(str(p) for p in path) or '<top>'}"


def prefix_depth(data: Any, path: Sequence[str | int]) -> int:
    """How many leading keys of ``path`` exist in the nested ``data``."""
    for depth, key in enumerate(path):
        found = (
            key in data
            if isinstance(data, dict)
            else (isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data))
        )
        if not found:
            return depth
        data = data[key]
    return len(path)


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML file; a missing file or a syntax error names the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise HepsnakeError(str(path), "file not found")
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        at = f": line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        why = exc.problem or exc.context
        if exc.problem and context and exc.context:
            why += f" ({exc.context} at line {context.line + 1})"
        raise HepsnakeError(f"{path}{at}", f"not valid YAML: {why}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HepsnakeError(str(path), f"not valid YAML: {exc}") from None


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping of config keys (empty: ``{}``)."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise HepsnakeError(str(path), "not a mapping of config keys")
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` (mappings key by key; lists and values replaced)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out


def resolve_extends(config: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """``config`` deep-merged onto the file its ``extends`` names (relative to the working
    directory), whose own ``extends`` is followed in turn; the extending file wins.

    The files read are added to ``origin``, first.
    """
    seen: list[Path] = []
    while "extends" in config:
        config = dict(config)
        base_path = config.pop("extends")
        extends = schema_validator(SCHEMA, "properties/extends", fill=False)
        check_schema(base_path, extends, origin.where, ("extends",))
        if Path(base_path).resolve() in seen:
            raise HepsnakeError(origin.where("extends"), f"'{base_path}' extends itself (a cycle)")
        seen.append(Path(base_path).resolve())
        base = read_mapping(base_path)
        origin.layers.insert(0, (base_path, copy.deepcopy(base)))
        config = merge(base, config)
    return config


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def workflow_config(config: dict[str, Any], configfiles: Sequence[str | Path]) -> dict[str, Any]:
    """Snakemake's ``config`` (``configfiles`` merged by Snakemake) made the validated config,
    in place: ``extends`` applied, defaults filled, every listed model checked."""
    origin = Origin([(display_path(f), read_mapping(f)) for f in configfiles])
    resolved = validate(resolve_extends(copy.deepcopy(config), origin), origin)
    for name in resolved["models"]:
        load_model(resolved, name)
    for study in resolved["tune"]:
        load_tune(resolved, study, origin)
    config.clear()
    config.update(resolved)
    return config


def filling_validator(schema: dict[str, Any]) -> Any:
    """A JSON-schema validator that also fills in each property's ``default``."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(
        validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Any:
        if validator.is_type(instance, "object"):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, properties, instance, schema)

    filling = validators.extend(Draft202012Validator, {"properties": properties_with_defaults})
    return filling(schema)


@functools.cache
def schema_document(schema_path: Path) -> dict[str, Any]:
    """A schema file, parsed once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(schema_path.read_text(), Loader=loader)


@functools.cache
def schema_validator(schema_path: Path, part: str = "", fill: bool = True) -> Any:
    """The validator of a schema file, or of its part at the slash path ``part``
    (``$defs/sample``); ``fill`` fills in defaults."""
    schema = schema_document(schema_path)
    if part:
        sub = functools.reduce(lambda node, key: node[key], part.split("/"), schema)
        schema = {**sub, "$defs": schema.get("$defs", {})}
    if fill:
        return filling_validator(schema)
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def schema_error(error: Any, where: Where, prefix: Sequence[str | int] = ()) -> HepsnakeError:
    """One error line for a JSON-schema error: the file, the key path and what is allowed.

    The one formatter of schema errors, for Snakemake runs and the ``hepsnake`` command alike.
    """
    path = [*prefix, *error.absolute_path]
    value = error.validator_value
    if error.validator == "required":
        missing = next(k for k in value if k not in error.instance)
        return HepsnakeError(where(*path, missing), "required key is missing")
    if error.validator == "additionalProperties" and value is False:
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))[0]
        return HepsnakeError(
            where(*path, extra), f"'{extra}' was unexpected (allowed keys: {', '.join(allowed)})"
        )
    if (
        error.validator == "pattern"
        and value == schema_document(SCHEMA)["$defs"]["name"]["pattern"]
    ):
        return HepsnakeError(
            where(*path),
            f"{error.instance!r} is not a valid name: letters, digits, '_', '.' and '-' only,"
            " starting with a letter or digit",
        )
    return HepsnakeError(where(*path), error.message.splitlines()[0])


def check_schema(data: Any, validator: Any, where: Where, prefix: Sequence[str | int] = ()) -> None:
    """Validate ``data`` (filling defaults if ``validator`` does); raise the best error.

    Errors under an ``if``'s ``then``/``else`` count only when no other error exists: with a
    wrong discriminator (a reader ``type: flatt``) the discriminator's error is the cause.
    """
    from jsonschema.exceptions import best_match

    errors = list(validator.iter_errors(data))
    plain = [e for e in errors if not {"then", "else"} & set(e.schema_path)]
    error = best_match(plain or errors)
    if error is not None:
        raise schema_error(error, where, prefix)


def model_path(config: dict[str, Any], name: str) -> Path:
    """The file of model ``name``: ``model_dir/<name>.yaml``, or for ``tune.<study>`` the
    study's best trial, ``results/tune/<study>/best.yaml``."""
    from hepsnake.tune import TUNED_PREFIX, best_path

    if name.startswith(TUNED_PREFIX):
        return best_path(name.removeprefix(TUNED_PREFIX))
    return Path(config["model_dir"]) / f"{name}.yaml"


def read_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Model ``name``'s config file as written (no defaults, no overrides)."""
    path = model_path(config, name)
    if not path.is_file():
        from hepsnake.tune import TUNED_PREFIX

        hint = f" (`snakemake {path}` makes it)" if name.startswith(TUNED_PREFIX) else ""
        raise HepsnakeError(str(path), f"model config for '{name}' not found{hint}")
    return read_mapping(path)


def load_model(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The validated model config of ``name`` (:func:`model_path`) with ``training_overrides``
    applied (checked with the config: an override's error names the config, not the model
    file)."""
    path = model_path(config, name)
    model = read_model(config, name)
    origin = Origin([(str(path), model)])
    check_schema(model, schema_validator(MODEL_SCHEMA), origin.where)
    model["training"].update(config["training_overrides"])
    check_schema(model, schema_validator(MODEL_SCHEMA), origin.where)
    check_components(model["model"], origin)
    return model


def check_components(model: dict[str, Any], origin: Origin) -> None:
    """Validate each registered component's block against its own schema (unknown options
    rejected, defaults filled); one ``jet_classification`` among uniquely named tasks."""
    from hepsnake.models.registry import lookup

    blocks = [
        (("model", kind), kind, model[kind]) for kind in ("encoder", "pooling") if kind in model
    ]
    blocks += [(("model", "tasks", i), "task", t) for i, t in enumerate(model["tasks"])]
    for path, kind, block in blocks:
        component = lookup(kind, block["type"], origin.where(*path, "type"))
        check_schema(block, filling_validator(component.schema()), origin.where, path)
    kinds = [t["type"] for t in model["tasks"]]
    if kinds.count("jet_classification") != 1:
        raise HepsnakeError(
            origin.where("model", "tasks"), "needs exactly one jet_classification task"
        )
    names = [t.setdefault("name", t["type"]) for t in model["tasks"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HepsnakeError(origin.where("model", "tasks"), f"task name {twice[0]!r} used twice")


def load_tune(config: dict[str, Any], study: str, origin: Origin | None = None) -> dict[str, Any]:
    """Study ``study`` of ``config['tune']``: its tune file validated (defaults filled) and
    merged with the config's settings, ``model`` the base model (:func:`load_model`).

    Every range's ends (and every choice) applied to the base model must give a valid model
    config: a bad key or value names the tune file's ``space`` entry.
    """
    from hepsnake.tune.space import apply_params, space_corners

    settings = config["tune"][study]
    path = settings["file"]
    spec = read_mapping(path)
    where = Origin([(path, spec)]).where
    check_schema(spec, schema_validator(TUNE_SCHEMA), where)
    for key, dist in spec["space"].items():
        if dist["type"] != "categorical" and not dist["low"] <= dist["high"]:
            raise HepsnakeError(where("space", key), "low is above high")
        if dist["type"] != "categorical" and dist["log"] and dist["low"] <= 0:
            raise HepsnakeError(where("space", key), "a log range needs low > 0")
    if spec["base_model"].startswith("tune."):
        raise HepsnakeError(where("base_model"), "a study starts from a model of model_dir")
    try:
        model = load_model(config, spec["base_model"])
    except HepsnakeError as exc:
        raise HepsnakeError(where("base_model"), str(exc)) from None
    for key, params in space_corners(spec["space"]):
        trial = apply_params(model, params, where("space", key))
        check_schema(trial, schema_validator(MODEL_SCHEMA), functools.partial(where, "space", key))
        try:
            check_components(trial["model"], Origin())
        except HepsnakeError as exc:
            raise HepsnakeError(where("space", key), str(exc)) from None
    refuse_url_secret(settings["storage"], (origin or Origin()).where("tune", study, "storage"))
    return {"name": study, **settings, **spec, "model": model}


def refuse_url_secret(url: str | None, where: str) -> None:
    """Refuse a storage or tracking URL that carries a password or token (Snakemake records
    params, logs keep commands): the database driver or MLflow reads it from the environment."""
    from urllib.parse import parse_qsl, urlsplit

    from hepsnake.io.remote import SECRET_QUERY_KEYS

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


def validate(config: dict[str, Any], origin: Origin | None = None) -> dict[str, Any]:
    """Validate against the JSON schema (filling defaults) and normalise the sample list, in
    place. An unknown or mistyped key raises HepsnakeError naming the file (from ``origin``)
    and the key."""
    origin = origin or Origin()
    check_schema(config, schema_validator(SCHEMA), origin.where)
    check_schema(
        config["training_overrides"],
        schema_validator(MODEL_SCHEMA, "properties/training", fill=False),
        origin.where,
        ("training_overrides",),
    )
    rows = sample_rows(config["samples"], origin)
    config["samples"] = [sample for sample, _ in rows]
    for sample, where in rows:
        check_sample(config, sample, where)
    for i, cut in enumerate(config["convert"]["cuts"]):
        check_expression(cut, origin.where("convert", "cuts", i))
    check_prepare(config, origin)
    label_map = config["prepare"].get("label_map")
    check_inputs(config["inputs"], label_map and label_map["variable"], origin.where)
    check_parameters(config, origin)
    check_evaluate(config, origin)
    from hepsnake.io.remote import refuse_credentials  # these modules import this one
    from hepsnake.prepare.duplicates import refuse_duplicate_files

    refuse_credentials(config)
    refuse_duplicate_files(config)
    mlflow = config["tracking"]["mlflow"]
    refuse_url_secret(mlflow and mlflow["uri"], origin.where("tracking", "mlflow", "uri"))
    return config


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


def load(source: str) -> dict[str, Any]:
    """A config from a YAML file path (``extends`` applied, validated) or an inline JSON stage
    slice (trusted).

    Relative paths inside the config (``extends``, sample sheet, files) are relative to the
    working directory, as in Snakemake.
    """
    if source.lstrip().startswith("{"):
        return json.loads(source)
    config = read_mapping(source)
    origin = Origin([(source, config)])
    return validate(resolve_extends(config, origin), origin)


def parse_params(text: str, where: str = "samples: params") -> dict[str, float]:
    """``"mS=16;ctau=1"`` → ``{"mS": 16.0, "ctau": 1.0}``."""
    params = {}
    for item in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise HepsnakeError(where, f"'{item}' is not NAME=NUMBER")
    return params


def read_sheet(path: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a TSV sample sheet as (line number, {column: non-empty cell}).

    ``#`` lines and blank lines are skipped; the first other line names the columns.
    """
    sheet = Path(path)
    if not sheet.is_file():
        raise HepsnakeError(path, "sample sheet not found")
    header: list[str] | None = None
    rows = []
    for n, line in enumerate(sheet.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line], delimiter="\t"))]
        if header is None:
            header = cells
            for column in header:
                if column not in SAMPLE_COLUMNS or header.count(column) > 1:
                    why = "unknown" if column not in SAMPLE_COLUMNS else "repeated"
                    raise HepsnakeError(
                        f"{path}: line {n}",
                        f"{why} column '{column}' (columns: {', '.join(SAMPLE_COLUMNS)})",
                    )
            continue
        if len(cells) > len(header):
            raise HepsnakeError(
                f"{path}: line {n}", f"{len(cells)} cells but {len(header)} columns"
            )
        rows.append((n, {k: v for k, v in zip(header, cells, strict=False) if v}))
    if not rows:
        raise HepsnakeError(path, "no samples (a header line, then one line per sample)")
    return rows


def sheet_where(path: str, line: int) -> Where:
    """The ``where`` of a sheet row: ``SHEET: line N, column 'COL'``."""

    def where(*keys: str | int) -> str:
        column = f", column '{keys[0]}'" if keys else ""
        return f"{path}: line {line}{column}"

    return where


def sample_rows(
    samples: str | list[dict[str, Any]], origin: Origin
) -> list[tuple[dict[str, Any], Where]]:
    """Each sample (from the sheet or the inline list) with strings converted, validated with
    ``$defs/sample`` (defaults filled), with the ``where`` of its error lines."""
    if isinstance(samples, str):
        rows = [(row, sheet_where(samples, n), f"line {n}") for n, row in read_sheet(samples)]
    else:
        rows = [
            (dict(row), functools.partial(origin.where, "samples", i), f"samples/{i}")
            for i, row in enumerate(samples)
        ]
    out: list[tuple[dict[str, Any], Where]] = []
    first: dict[str, str] = {}
    for sample, where, label in rows:
        if isinstance(sample.get("files"), str):
            sample["files"] = sample["files"].replace(",", " ").split()
        if isinstance(sample.get("params"), str):
            sample["params"] = parse_params(sample["params"], where("params"))
        if isinstance(samples, str) and "xsec" in sample:
            with contextlib.suppress(ValueError):  # else the schema names the cell
                sample["xsec"] = float(sample["xsec"])
        check_schema(sample, schema_validator(SCHEMA, "$defs/sample"), where)
        # ~ as in a shell: the examples name the scikit-hep-testdata cache ~/.local/skhepdata
        sample["files"] = [f if is_remote(f) else os.path.expanduser(f) for f in sample["files"]]
        name = sample["name"]
        if name in first:
            raise HepsnakeError(
                where("name"), f"duplicate sample name '{name}' (first at {first[name]})"
            )
        first[name] = label
        out.append((sample, where))
    return out


def load_samples(
    samples: str | list[dict[str, Any]], origin: Origin | None = None
) -> list[dict[str, Any]]:
    """The validated sample list from the config list or a TSV sample sheet."""
    return [sample for sample, _ in sample_rows(samples, origin or Origin())]


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


def samples_with_role(config: dict[str, Any], *roles: str) -> list[str]:
    """Names of the samples whose role is one of ``roles``."""
    return [s["name"] for s in config["samples"] if s["role"] in roles]


def sample_by_name(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The sample called ``name``."""
    for sample in config["samples"]:
        if sample["name"] == name:
            return sample
    raise HepsnakeError("config: samples", f"no sample named '{name}'")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL read through XRootD/fsspec rather than a local file."""
    return path.startswith(REMOTE_PREFIXES)


def run_parameters(config: dict[str, Any]) -> list[str]:
    """Every sample parameter of the run, first-seen order: a stage slice's
    ``run_parameters``, else those of the config's samples."""
    if "run_parameters" in config:
        return list(config["run_parameters"])
    return list(dict.fromkeys(p for s in config["samples"] for p in s["params"]))


def expand_files(sample: dict[str, Any]) -> list[str]:
    """Local globs expanded (sorted); a pattern matching nothing is an error.

    URLs are kept as given: nothing here touches the network, so Snakemake builds its DAG
    offline; the convert job lists remote globs (:func:`hepsnake.io.listing.expand_urls`).
    """
    files: list[str] = []
    for pattern in sample["files"]:
        if is_remote(pattern) or not glob.has_magic(pattern):
            files.append(pattern)
            continue
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise HepsnakeError(pattern, f"no file matches (sample '{sample['name']}')")
        files.extend(matched)
    return files


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (16 hex digits) of the whole validated config and every listed model's config."""
    models = {m: load_model(config, m) for m in config["models"]}
    text = json.dumps({"config": config, "models": models}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scan_parameters(config: dict[str, Any], model: str) -> dict[str, Any]:
    """The parameters evaluation scans for ``model`` and their training values: a
    parameterised model's ``parameters.names``/``train``; else the ``params`` of the signal
    samples (values of the ``train``-role ones)."""
    parameters = load_model(config, model).get("parameters")
    if parameters:
        train = parameters["train"]
        return {
            "names": list(parameters["names"]),
            "train": {n: sorted(float(v) for v in train[n]) for n in parameters["names"]},
        }
    signal = [
        s
        for s in config["samples"]
        if s.get("label") == config["evaluate"]["signal"] and s["role"] in ("train", "test")
    ]
    names = list(dict.fromkeys(n for s in signal for n in s["params"]))
    trained = [s["params"] for s in signal if s["role"] == "train"]
    return {
        "names": names,
        "train": {n: sorted({float(p[n]) for p in trained if n in p}) for n in names},
    }


def stage_config(config: dict[str, Any], stage: str, **wildcards: str) -> str:
    """The JSON slice of ``config`` that ``stage`` reads, passed as a rule param.

    Snakemake reruns a job when its params change, so each job sees only the keys it uses:
    changing one model's hyperparameters does not rerun the conversion.
    """
    if stage == "simulate":
        part = {"simulate": {**config["simulate"], "samples": None}}
        part["simulate"]["samples"] = {
            wildcards["toy"]: config["simulate"]["samples"][wildcards["toy"]]
        }
    elif stage in ("convert", "gather"):
        sample = sample_by_name(config, wildcards["sample"])
        part = {
            "class_names": config["class_names"],
            "samples": [sample],
            "run_parameters": run_parameters(config),
            "readers": {sample["reader"]: config["readers"][sample["reader"]]},
            "convert": config["convert"],
        }
        if stage == "convert":  # judged by the gather: changing it reruns no part
            part["convert"] = {
                k: v for k, v in config["convert"].items() if k != "max_failed_fraction"
            }
    elif stage == "split":
        part = {
            "class_names": config["class_names"],
            "samples": [
                {k: s[k] for k in ("name", "role", "label") if k in s} for s in config["samples"]
            ],
            "prepare": config["prepare"],
            # the transformed inputs are written by the split (not the variable lists)
            "inputs": {k: config["inputs"][k] for k in ("transforms", "input_map")},
        }
    elif stage == "norm":
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            "prepare": {"std_floor": config["prepare"]["std_floor"]},
        }
    elif stage == "train":
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            "model_name": wildcards["model"],
            # 'export' concerns rule export only: changing it must not retrain
            "model": {
                k: v for k, v in load_model(config, wildcards["model"]).items() if k != "export"
            },
        }
        if config["tracking"]["loggers"]:  # absent when off: turning it on retrains, not before
            part["tracking"] = {"loggers": config["tracking"]["loggers"]}
    elif stage in ("tune", "tune_best"):
        study = load_tune(config, wildcards["study"])
        part = {
            "class_names": config["class_names"],
            "inputs": config["inputs"],
            # n_trials and n_parallel shape the DAG only: more trials must not rerun the others
            "study": {k: v for k, v in study.items() if k not in TUNE_DAG_KEYS},
        }
        part["study"]["model"] = {k: v for k, v in study["model"].items() if k != "export"}
        if stage == "tune_best":
            part["study"]["n_trials"] = study["n_trials"]
            part["model_file"] = read_model(config, study["base_model"])
            if config["tracking"]["mlflow"]:
                part["tracking"] = {"mlflow": config["tracking"]["mlflow"]}
        elif config["tracking"]["loggers"]:
            part["tracking"] = {"loggers": config["tracking"]["loggers"]}
    elif stage == "track":
        part = {"tracking": config["tracking"]}
    elif stage == "report":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "parameters": {m: scan_parameters(config, m) for m in config["models"]},
            "config_hash": config_hash(config),
        }
    elif stage == "export":
        part = {"evaluate": {"signal": config["evaluate"]["signal"]}, "export": config["export"]}
    elif stage == "evaluate":
        part = {
            "class_names": config["class_names"],
            "evaluate": config["evaluate"],
            "parameters": scan_parameters(config, wildcards["model"]),
            "tasks": load_model(config, wildcards["model"])["model"]["tasks"],
        }
    else:
        raise HepsnakeError("stage", f"unknown stage '{stage}'")
    return json.dumps(part, sort_keys=True)
