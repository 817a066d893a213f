"""The resolved config: the validated config with every listed model and study loaded, the
one thing every stage's contract is cut from (:func:`hepsnake.config.contracts.contract`).

Snakemake resolves it once per run and writes it to ``results/config/resolved.yaml``
(:data:`hepsnake.paths.RESOLVED_CONFIG`); each rule passes that file and a name. By hand,
``hepsnake <verb> --config my.yaml`` resolves the YAML file the same way: the same contract.
"""

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hepsnake.config.loading import (
    display_path,
    load,
    load_model,
    load_tune,
    read_mapping,
    read_model,
    resolve_extends,
    validate,
    validate_model,
)
from hepsnake.config.samples import sample_by_name, samples_with_role
from hepsnake.config.schema import Origin
from hepsnake.errors import HepsnakeError
from hepsnake.paths import TUNED_PREFIX, evaluate_plots

MARKER = "hepsnake_resolved"  # top-level key of a resolved file (no config file has it)
VERSION = 1


class Resolved:
    """A validated ``config`` with its models (each validated, ``training_overrides``
    applied), its studies (:func:`~hepsnake.config.loading.load_tune`) and, per study's base
    model, that model's file as written. Each is loaded when first asked for, so a stage that
    reads no model loads none; :meth:`data` loads them all (what the resolved file holds)."""

    def __init__(
        self,
        config: dict[str, Any],
        models: Mapping[str, dict[str, Any]] | None = None,
        studies: Mapping[str, dict[str, Any]] | None = None,
        base_model_files: Mapping[str, dict[str, Any]] | None = None,
        origin: Origin | None = None,
    ) -> None:
        self.config = config
        self._models = dict(models or {})
        self._studies = dict(studies or {})
        self._files = dict(base_model_files or {})
        self._origin = origin

    def sample(self, name: str) -> dict[str, Any]:
        return sample_by_name(self.config, name)

    def model(self, name: str) -> dict[str, Any]:
        """Model ``name``: listed in ``models`` (or given as data to :func:`resolve`)."""
        if name not in self._models:
            if name not in self.config["models"]:
                known = ", ".join(self.config["models"]) or "none"
                raise HepsnakeError("config: models", f"no model named '{name}' (models: {known})")
            self._models[name] = load_model(self.config, name)
        return self._models[name]

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """Every listed model (and every model given as data)."""
        return {m: self.model(m) for m in [*self.config["models"], *self._models]}

    def model_name(self, name: str) -> str:
        """``name``, checked to be a model of the config."""
        self.model(name)
        return name

    def study(self, name: str) -> dict[str, Any]:
        """Study ``name`` of the config's ``tune``."""
        if name not in self._studies:
            if name not in self.config["tune"]:
                known = ", ".join(self.config["tune"]) or "none"
                raise HepsnakeError("config: tune", f"no study named '{name}' (studies: {known})")
            self._studies[name] = load_tune(self.config, name, self._origin)
        return self._studies[name]

    @property
    def studies(self) -> dict[str, dict[str, Any]]:
        return {s: self.study(s) for s in self.config["tune"]}

    def base_model_file(self, name: str) -> dict[str, Any]:
        """Model ``name``'s file as written (a study's base model)."""
        if name not in self._files:
            self._files[name] = read_model(self.config, name)
        return self._files[name]

    def roles(self, *roles: str) -> list[str]:
        """The samples whose role is one of ``roles``."""
        return samples_with_role(self.config, *roles)

    @property
    def control(self) -> bool:
        """Whether the config has control-region samples."""
        return bool(self.roles("control"))

    @property
    def signal_param_samples(self) -> list[str]:
        """Signal samples with parameters (a mass): the per-parameter evaluation plots."""
        signal = self.config["evaluate"].get("signal")
        return [
            s["name"]
            for s in self.config["samples"]
            if s["role"] in ("train", "test") and s.get("label") == signal and s["params"]
        ]

    @property
    def exported(self) -> list[str]:
        """The listed models rule export makes ONNX files of."""
        return [m for m in self.config["models"] if self.model(m)["export"]]

    @property
    def tuned_studies(self) -> list[str]:
        """Studies whose best trial is a listed model (``tune.<study>``)."""
        listed = [m.removeprefix(TUNED_PREFIX) for m in self.config["models"]]
        return [s for s in listed if s in self.config["tune"]]

    @property
    def evaluate_plots(self) -> list[str]:
        ev = self.config["evaluate"]
        return evaluate_plots(
            sb_scan=ev["physical_weights"] is not False,
            parameters=bool(self.signal_param_samples),
            pt_bins=bool(ev["pt_bins"]),
            control=self.control,
            efficiency_variables=ev["efficiency_variables"],
        )

    @property
    def config_hash(self) -> str:
        """sha256 (16 hex digits) of the whole validated config and every listed model's."""
        models = {m: self.model(m) for m in self.config["models"]}
        text = json.dumps({"config": self.config, "models": models}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def scan(self, model: str) -> dict[str, Any]:
        """The parameters evaluation scans for ``model`` and their training values: a
        parameterised model's ``parameters.names``/``train``; else the ``params`` of the
        signal samples (values of the ``train``-role ones)."""
        parameters = self.model(model).get("parameters")
        if parameters:
            train = parameters["train"]
            return {
                "names": list(parameters["names"]),
                "train": {n: sorted(float(v) for v in train[n]) for n in parameters["names"]},
            }
        signal = [
            s
            for s in self.config["samples"]
            if s.get("label") == self.config["evaluate"].get("signal")
            and s["role"] in ("train", "test")
        ]
        names = list(dict.fromkeys(n for s in signal for n in s["params"]))
        trained = [s["params"] for s in signal if s["role"] == "train"]
        return {
            "names": names,
            "train": {n: sorted({float(p[n]) for p in trained if n in p}) for n in names},
        }

    def data(self) -> dict[str, Any]:
        """What :func:`write_resolved` writes: everything, loaded."""
        studies = self.studies
        files = {s["base_model"]: self.base_model_file(s["base_model"]) for s in studies.values()}
        return {
            MARKER: VERSION,
            "config": self.config,
            "models": self.models,
            "studies": studies,
            "base_model_files": files,
        }


def resolve(
    config: dict[str, Any],
    models: Mapping[str, dict[str, Any]] | None = None,
    origin: Origin | None = None,
) -> Resolved:
    """The resolved form of a validated ``config`` (models and studies loaded when asked
    for; a ``tune.<study>`` model needs the study's best.yaml). ``models`` adds model configs
    given as data (validated like a model file, overrides applied), e.g. a test's variant;
    ``origin`` names the config's files in errors."""
    given = {name: validated_model(config, name, model) for name, model in (models or {}).items()}
    return Resolved(config, given, origin=origin)


def workflow_config(config: dict[str, Any], configfiles: Sequence[str | Path]) -> Resolved:
    """Snakemake's ``config`` (``configfiles`` merged by Snakemake) made the validated config,
    in place (``extends`` applied, defaults filled), and resolved: every listed model and
    study loaded and checked."""
    origin = Origin([(display_path(f), read_mapping(f)) for f in configfiles])
    validated = validate(resolve_extends(copy.deepcopy(config), origin), origin)
    config.clear()
    config.update(validated)
    resolved = resolve(config, origin=origin)
    resolved.data()  # every model and study loaded: checked now, when the DAG is built
    return resolved


def validated_model(config: dict[str, Any], name: str, model: dict[str, Any]) -> dict[str, Any]:
    """A model config given as data, validated (defaults filled, ``training_overrides``
    applied) as :func:`~hepsnake.config.loading.load_model` validates a file."""
    model = copy.deepcopy(model)
    return validate_model(config, model, Origin([(f"model {name}", model)]))


def read_config(path: str | Path) -> Resolved:
    """The resolved config of ``path``: a resolved file as written by :func:`write_resolved`,
    or a config YAML file (``extends`` applied, validated, models and studies loaded)."""
    data = read_mapping(path)
    if MARKER not in data:
        return resolve(load(str(path)))
    if data[MARKER] != VERSION:
        raise HepsnakeError(str(path), f"resolved by another hepsnake (format {data[MARKER]})")
    return Resolved(data["config"], data["models"], data["studies"], data["base_model_files"])


def resolved_text(resolved: Resolved) -> str:
    """The text of a resolved file: a header line, then the data as YAML (mappings in the
    config's order, which is the order of output fields)."""
    body = yaml.safe_dump(resolved.data(), sort_keys=False, allow_unicode=True)
    return f"# written by hepsnake (common.smk): the validated config every job reads\n{body}"


def write_resolved(resolved: Resolved, path: str | Path) -> bool:
    """Write ``resolved`` to ``path`` (atomically) unless it already holds the same text, so
    the job steps of a batch system that re-read the Snakefile leave it as it is. Whether it
    was written."""
    from hepsnake.io.atomic import atomic_path

    text = resolved_text(resolved)
    target = Path(path)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return True
