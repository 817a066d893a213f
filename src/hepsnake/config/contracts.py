"""The typed contract of each stage: a frozen dataclass holding exactly what the stage reads.

:func:`contract` is the one constructor: ``contract(resolved, "train", model="baseline")``
cuts the stage's part out of the resolved config (:mod:`hepsnake.config.resolved`: the
validated config, every listed model and study) and types it (:func:`~.typed.build`). Every
default was filled by the schema when the config was validated; a value a default derives
from another (a head as wide as ``dim``) is resolved by the contract's own property. A stage
receives its contract and reads attributes; Snakemake's params hold :func:`stage_digest`,
so a job reruns when what its stage reads changes, and only then.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hepsnake.config.typed import build, build_fields, digest, to_data
from hepsnake.errors import HepsnakeError

# ---------------------------------------------------------------- shared pieces


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample (``samples:`` or a sample-sheet row)."""

    name: str
    files: tuple[str, ...]
    reader: str
    role: str
    params: Mapping[str, float]
    xsec: float
    label: str | None = None
    tree: str | None = None


@dataclass(frozen=True, slots=True)
class SampleRole:
    """What the split reads of a sample: its role and class label."""

    name: str
    role: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """Index branches attaching a per-event collection to jets (-1 = none): per jet the index
    of a constituent (``jet_side``, one branch per slot), or per constituent its jet's."""

    jet_side: str | tuple[str, ...] | None = None
    constituent_side: str | None = None

    @property
    def branches(self) -> list[str]:
        """The index branches."""
        if self.jet_side is not None:
            return [self.jet_side] if isinstance(self.jet_side, str) else list(self.jet_side)
        return [str(self.constituent_side)]


@dataclass(frozen=True, slots=True)
class FlatCollection:
    """A constituent collection of a flat reader: output variable → branch or expression,
    attached per event through a :class:`Link` (else jagged per jet)."""

    variables: Mapping[str, str]
    link: Link | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "FlatCollection":
        if "variables" in data and isinstance(data["variables"], Mapping):
            return build_fields(cls, data)
        return build_fields(cls, {"variables": data})

    def to_data(self) -> Any:
        if self.link is None:
            return dict(self.variables)
        return {"variables": dict(self.variables), "link": to_data(self.link)}


@dataclass(frozen=True, slots=True)
class FlatReader:
    """A ``type: flat`` reader (ROOT TTrees of plain branches)."""

    type: str
    tree: str
    entry: str
    unit: str
    jets: Mapping[str, str]
    collections: Mapping[str, FlatCollection]


@dataclass(frozen=True, slots=True)
class BTagging:
    container: str
    variables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PhysliteReader:
    """A ``type: physlite`` reader (DAOD_PHYSLITE TTree or RNTuple)."""

    type: str
    tree: str | None
    jet_container: str
    track_container: str
    event_info: str
    jets: tuple[str, ...]
    tracks: tuple[str, ...]
    association: str
    track_key: int | None
    dr_fallback: float | None
    dr_cone: float
    btagging: BTagging | None


Reader = FlatReader | PhysliteReader


@dataclass(frozen=True, slots=True)
class XRootD:
    """XRootD client limits for ``root://`` and ``xroot://`` files (``convert.xrootd``)."""

    connection_window_s: int
    connection_retry: int
    request_timeout_s: int
    stream_timeout_s: int


@dataclass(frozen=True, slots=True)
class FilesPerJob:
    """Input files per convert job (a part of a sample): ``local`` of local files, ``remote``
    of remote ones (``convert.files_per_job``; a single number sets both)."""

    local: int
    remote: int

    @classmethod
    def from_data(cls, data: int | Mapping[str, int]) -> "FilesPerJob":
        if isinstance(data, int):
            return cls(data, data)
        return build_fields(cls, data)

    def to_data(self) -> Any:
        return {"local": self.local, "remote": self.remote}


@dataclass(frozen=True, slots=True)
class ConvertSpec:
    max_constituents: Mapping[str, int]
    sort_by: Mapping[str, str]
    cuts: tuple[str, ...]
    compression: str
    chunk_size: int
    skip_bad_files: bool
    xrootd: XRootD
    files_per_job: FilesPerJob
    max_failed_fraction: float  # judged by the gather only (see part_digest)


@dataclass(frozen=True, slots=True)
class Inputs:
    """The training inputs shared by every model (Salt's meanings)."""

    variables: Mapping[str, tuple[str, ...]]
    input_map: Mapping[str, str]
    num_inputs: Mapping[str, int]
    transforms: Mapping[str, Mapping[str, Any]]
    truth: tuple[str, ...]
    allow_truth_inputs: bool

    def dataset(self, collection: str) -> str:
        """The HDF5 dataset of input ``collection``."""
        return self.input_map.get(collection, collection)


@dataclass(frozen=True, slots=True)
class Transforms:
    """What the split reads of the inputs: the transformed fields it writes."""

    transforms: Mapping[str, Mapping[str, Any]]
    input_map: Mapping[str, str]

    def dataset(self, collection: str) -> str:
        return self.input_map.get(collection, collection)


@dataclass(frozen=True, slots=True)
class LabelMap:
    """Labels from a raw jet field: class (or ``drop``) → values and ``{range: [lo, hi]}``."""

    variable: str
    map: Mapping[str, Any]
    unmapped: str

    def intervals(self, cls: str) -> list[tuple[float, float]]:
        """Class ``cls``'s values and ranges as intervals: a value v is ``(v, v)``, a range
        the half-open ``[lo, hi)``."""
        from hepsnake.config.checks import label_intervals

        return label_intervals(self.map[cls])


@dataclass(frozen=True, slots=True)
class WeightsSpec:
    mode: str
    variables: tuple[str, ...]
    bins: int
    max_weight: float
    balance_classes: bool
    use_physics_weights: bool
    target: str | None = None


@dataclass(frozen=True, slots=True)
class PrepareSpec:
    fractions: Mapping[str, float]
    seed: int
    compression: str
    debug_jets: int
    deduplicate: bool
    std_floor: float | None
    resample: str
    weights: WeightsSpec
    negative_weights: str
    empty_class: str
    min_class_jets: int
    label_map: LabelMap | None = None


@dataclass(frozen=True, slots=True)
class Discriminant:
    type: str
    fc: float
    ftau: float


@dataclass(frozen=True, slots=True)
class ScoreTagger:
    """A reference tagger given by one discriminant field."""

    score: str


@dataclass(frozen=True, slots=True)
class ProbabilityTagger:
    """A reference tagger given by per-class probability fields."""

    probabilities: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PlotStyle:
    experiment: str
    label: str | None = None
    simulation: bool | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class EvaluateSpec:
    signal: str | None
    signal_label: str | None
    working_points: tuple[float, ...] | None
    discriminant: Discriminant
    fractions: Mapping[str, float] | None
    pt_bins: tuple[float, ...] | None
    efficiency_variables: Mapping[str, tuple[float, ...]]
    reference_taggers: Mapping[str, ScoreTagger | ProbabilityTagger]
    ratio_reference: str | None
    physical_weights: bool | None
    roc_weights: str
    min_class_jets: int
    constant_fraction: float
    plot_style: PlotStyle | None

    @property
    def signal_name(self) -> str:
        """How plots and the report name the signal."""
        return self.signal_label or str(self.signal)


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """The report's summary ranking and the thresholds of its warnings (``report:``)."""

    best_by: str  # what the summary ranks the models by: auc or rejection
    converged_tail: float
    still_falling_epochs: int
    overfitting_epochs: int
    overfitting_rise: float
    ks_p_value: float
    int8_auc_delta: float


@dataclass(frozen=True, slots=True)
class Scan:
    """The parameters evaluation scans and their training values."""

    names: tuple[str, ...]
    train: Mapping[str, tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class Mlflow:
    uri: str
    experiment: str


# ---------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class Component:
    """A registered component's block (``type`` and its validated options): the component is
    built with the options as keyword arguments (:func:`hepsnake.models.registry.build`)."""

    type: str
    options: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Component":
        options = {k: to_data(v) for k, v in data.items() if k != "type"}
        return cls(str(data["type"]), options)

    def to_data(self) -> Any:
        return {"type": self.type, **to_data(self.options)}

    @property
    def name(self) -> str:
        """A task's name (every task has one once validated)."""
        return str(self.options.get("name", self.type))


@dataclass(frozen=True, slots=True)
class InitNet:
    hidden: tuple[int, ...] | None = None
    final_activation: bool | None = None  # None: True (configs before the key)


@dataclass(frozen=True, slots=True)
class Fourier:
    n_freqs: int
    base: float


@dataclass(frozen=True, slots=True)
class EdgeFeatures:
    collection: str
    pt: str
    eta: str
    phi: str
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Head:
    dropout: float
    hidden: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Film:
    where: tuple[str, ...]
    scale: bool
    bias: bool
    layer_norm: bool
    hidden: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model config's ``model:`` block: the architecture."""

    dim: int
    jet_inputs: str
    init_nets: Mapping[str, InitNet]
    fourier: Fourier | None
    edge_features: EdgeFeatures | None
    head: Head
    tasks: tuple[Component, ...]
    film: Film | None
    encoder: Component | None = None
    pooling: Component | None = None

    def init_net(self, collection: str) -> InitNet:
        """``collection``'s init net: its own, or the ``default`` one."""
        return self.init_nets.get(collection, self.init_nets.get("default", InitNet()))

    def init_hidden(self, collection: str) -> tuple[int, ...]:
        """The hidden widths of ``collection``'s init net (one layer of ``dim`` unless
        configured)."""
        net = self.init_net(collection)
        return net.hidden if net.hidden is not None else (self.dim,)

    def init_final_activation(self, collection: str) -> bool:
        """Whether ``collection``'s init net ends with its activation (unless configured)."""
        return self.init_net(collection).final_activation is not False

    @property
    def head_hidden(self) -> tuple[int, ...]:
        """The default head's hidden widths (one layer of ``dim`` unless configured)."""
        return self.head.hidden if self.head.hidden is not None else (self.dim,)


@dataclass(frozen=True, slots=True)
class EarlyStopping:
    patience: int
    min_delta: float


@dataclass(frozen=True, slots=True)
class Plateau:
    factor: float
    patience: int


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    batch_size: int
    max_epochs: int
    lr: float
    weight_decay: float
    schedule: str
    plateau: Plateau
    early_stopping: EarlyStopping | None
    gradient_clip: float | None
    class_weights: bool
    seed: int
    accelerator: str
    devices: int | str
    precision: str
    compile: bool
    compile_backend: str
    tensorboard: bool
    print_metrics: bool
    progress_bar: bool
    limit_train_jets: int | None


@dataclass(frozen=True, slots=True)
class Parameters:
    """A parameterised model's parameters: names, training values (and the probabilities
    background jets draw them with), evaluated values."""

    names: tuple[str, ...]
    train: Mapping[str, tuple[float, ...]]
    test: Mapping[str, tuple[float, ...]]
    prob: Mapping[str, tuple[float, ...]] | None = None


@dataclass(frozen=True, slots=True)
class Adversarial:
    """Data/MC adversarial training (``adversarial:`` of a model config)."""

    weight: float
    k_steps: int
    hidden: tuple[int, ...]
    lr: float
    ks_class: str
    ks_threshold: float
    pt_bins: tuple[float, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Adversarial":
        # ``lambda`` (the config's name) is a Python keyword
        return build_fields(cls, {"weight" if k == "lambda" else k: v for k, v in data.items()})

    def to_data(self) -> Any:
        return {
            "lambda" if f == "weight" else f: to_data(getattr(self, f))
            for f in self.__dataclass_fields__
        }


@dataclass(frozen=True, slots=True)
class Model:
    """A trained model's config (a model file less ``export`` and ``description``, which
    training does not read)."""

    model: ModelSpec
    training: TrainingSpec
    parameters: Parameters | None
    adversarial: Adversarial | None


@dataclass(frozen=True, slots=True)
class Trained:
    """What a trained model records (a checkpoint's hyperparameters, as plain data): its
    architecture, training settings, inputs, norm dict, classes and their loss weights,
    parameters and adversarial settings. :func:`trained` makes it from a train contract."""

    model_cfg: ModelSpec
    training_cfg: TrainingSpec
    inputs: Inputs
    norm: Mapping[str, Any]
    class_names: tuple[str, ...]
    class_weights: tuple[float, ...] | None = None
    parameters: Parameters | None = None
    adversarial: Adversarial | None = None


# ---------------------------------------------------------------- stage contracts


@dataclass(frozen=True, slots=True)
class ToySample:
    process: str
    n_jets: int
    mismodel: bool
    data: bool
    mS: float | None = None


@dataclass(frozen=True, slots=True)
class SimulateContract:
    """``hepsnake simulate``: one toy sample."""

    name: str
    seed: int
    train_masses: tuple[float, ...]
    unseen_masses: tuple[float, ...]
    sample: ToySample


@dataclass(frozen=True, slots=True)
class ConvertContract:
    """``hepsnake convert`` (one sample's files into one HDF5 file, or one part of them) and
    ``hepsnake gather`` (the sample's parts into one file)."""

    class_names: tuple[str, ...]
    sample: Sample
    reader: Reader
    convert: ConvertSpec
    run_parameters: tuple[str, ...]  # every sample parameter of the run (NaN where absent)


@dataclass(frozen=True, slots=True)
class SplitContract:
    """``hepsnake split``: the converted samples into train/val/test (or control) splits."""

    class_names: tuple[str, ...]
    samples: tuple[SampleRole, ...]
    prepare: PrepareSpec
    inputs: Transforms

    def names(self, *roles: str) -> list[str]:
        """The samples whose role is one of ``roles``."""
        return [s.name for s in self.samples if s.role in roles]


@dataclass(frozen=True, slots=True)
class NormContract:
    """``hepsnake norm``: normalisation and class weights from the train split."""

    class_names: tuple[str, ...]
    inputs: Inputs
    std_floor: float | None


@dataclass(frozen=True, slots=True)
class TrainContract:
    """``hepsnake train``: one model (also a tuning trial's)."""

    name: str
    class_names: tuple[str, ...]
    inputs: Inputs
    model: Model
    loggers: tuple[str, ...]

    @property
    def control(self) -> bool:
        """Whether the model reads the control-region splits (adversarial training)."""
        return self.model.adversarial is not None


@dataclass(frozen=True, slots=True)
class Distribution:
    """A tune file's range (``int``/``float``) or ``categorical`` choices of one key."""

    type: str
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class Study:
    """A hyperparameter study: its tune file's settings, the config's storage and the base
    model as trained (:func:`trial_contract` applies a trial's parameters)."""

    name: str
    base_model: str
    metric: str
    direction: str
    sampler: str
    seed: int
    pruner: str
    space: Mapping[str, Distribution]
    storage: str | None
    model: Model


@dataclass(frozen=True, slots=True)
class TuneContract:
    """``hepsnake tune``: one trial job of a study."""

    study: Study
    class_names: tuple[str, ...]
    inputs: Inputs
    loggers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StudyContract:
    """``hepsnake study``: the best trial as a model config, the study's table and plots."""

    study: Study
    n_trials: int
    base_model_file: Mapping[str, Any]  # the base model's file as written, for best.yaml
    mlflow: Mlflow | None


@dataclass(frozen=True, slots=True)
class PredictContract:
    """``hepsnake predict``: the test split (and the control region's) through one model."""

    model: str
    control: bool


@dataclass(frozen=True, slots=True)
class EvaluateContract:
    """``hepsnake evaluate``: one model's metrics and plots."""

    model: str
    class_names: tuple[str, ...]
    evaluate: EvaluateSpec
    parameters: Scan
    tasks: tuple[Component, ...]


@dataclass(frozen=True, slots=True)
class ExportContract:
    """``hepsnake export``: one model's ONNX files, validation and benchmark."""

    model: str
    signal: str
    quantise: str
    opset: int
    n_validate: int
    n_latency: int
    athena: bool  # also the Salt/Athena layout (export.athena)


@dataclass(frozen=True, slots=True)
class CompareContract:
    """``hepsnake compare``: the models' best epochs."""

    models: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrackContract:
    """``hepsnake track``: MLflow runs of the trained models with their plots and exports."""

    mlflow: Mlflow | None
    models: tuple[str, ...]
    exported: tuple[str, ...]
    plots: tuple[str, ...]  # rule evaluate's plots of each model (paths.evaluate_plots)


@dataclass(frozen=True, slots=True)
class ReportContract:
    """``hepsnake report``: results/report.md."""

    class_names: tuple[str, ...]
    evaluate: EvaluateSpec
    report: ReportSpec
    negative_weights: str  # the training's negative-weight policy, which the warnings name
    parameters: Mapping[str, Scan]
    config_hash: str
    models: tuple[str, ...]
    exported: tuple[str, ...]
    studies: tuple[str, ...]  # studies whose best trial is a listed model
    samples: tuple[str, ...]


STAGES: dict[str, type] = {
    "simulate": SimulateContract,
    "convert": ConvertContract,
    "split": SplitContract,
    "norm": NormContract,
    "train": TrainContract,
    "tune": TuneContract,
    "study": StudyContract,
    "predict": PredictContract,
    "evaluate": EvaluateContract,
    "export": ExportContract,
    "compare": CompareContract,
    "track": TrackContract,
    "report": ReportContract,
}


def model_data(model: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a validated model config that training reads (:class:`Model`)."""
    return {k: model[k] for k in ("model", "training", "parameters", "adversarial")}


def contract(resolved: Any, stage: str, **names: str) -> Any:
    """The contract of ``stage`` (a key of :data:`STAGES`) from ``resolved`` (a
    :class:`~hepsnake.config.resolved.Resolved`), for the ``model``, ``sample`` or ``study``
    named where the stage runs once per name."""
    from hepsnake.config.resolved import Resolved

    if not isinstance(resolved, Resolved):
        raise TypeError("contract() takes a Resolved config (hepsnake.config.resolve)")
    if stage not in STAGES:
        raise HepsnakeError("stage", f"unknown stage '{stage}' (stages: {', '.join(STAGES)})")
    data = stage_data(resolved, stage, names)
    return build(STAGES[stage], data)


def section(part: str, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``data`` validated against the config schema's ``part`` (defaults filled)."""
    import copy

    from hepsnake.config.schema import SCHEMA, check_schema, schema_validator

    block = copy.deepcopy(dict(data))
    check_schema(
        block, schema_validator(SCHEMA, part), lambda *p: f"{where}: {'/'.join(map(str, p))}"
    )
    return block


def reader(data: Mapping[str, Any], where: str = "reader") -> Reader:
    """The typed reader of a reader block (a ``readers:`` entry): validated, defaults filled
    (a reader built outside a config: ``hepsnake init``, tests)."""
    block = section("properties/readers/additionalProperties", data, where)
    return build(FlatReader if block["type"] == "flat" else PhysliteReader, block)


def inputs(data: Mapping[str, Any], where: str = "inputs") -> Inputs:
    """The typed ``inputs`` section of ``data``: validated, defaults filled."""
    return build(Inputs, section("properties/inputs", data, where))


def need(names: Mapping[str, str], key: str, stage: str) -> str:
    if not names.get(key):
        raise HepsnakeError(f"hepsnake {stage}", f"needs --{key} NAME")
    return names[key]


def stage_data(r: Any, stage: str, names: Mapping[str, str]) -> dict[str, Any]:
    """The plain data of ``stage``'s contract (see :func:`contract`)."""

    c = r.config
    if stage == "simulate":
        name = need(names, "sample", stage)
        sim = c.get("simulate") or {}
        if name not in sim.get("samples", {}):
            raise HepsnakeError("config: simulate/samples", f"no toy sample named '{name}'")
        return {
            "name": name,
            "seed": sim["seed"],
            "train_masses": sim["masses"]["train"],
            "unseen_masses": sim["masses"]["unseen"],
            "sample": sim["samples"][name],
        }
    if stage == "convert":
        sample = r.sample(need(names, "sample", stage))
        return {
            "class_names": c["class_names"],
            "sample": sample,
            "reader": c["readers"][sample["reader"]],
            "convert": c["convert"],
            "run_parameters": list(dict.fromkeys(p for s in c["samples"] for p in s["params"])),
        }
    if stage == "split":
        return {
            "class_names": c["class_names"],
            "samples": [
                {k: s[k] for k in ("name", "role", "label") if k in s} for s in c["samples"]
            ],
            "prepare": c["prepare"],
            "inputs": {k: c["inputs"][k] for k in ("transforms", "input_map")},
        }
    if stage == "norm":
        return {
            "class_names": c["class_names"],
            "inputs": c["inputs"],
            "std_floor": c["prepare"]["std_floor"],
        }
    if stage == "train":
        return train_data(r, need(names, "model", stage))
    if stage == "tune":
        study = r.study(need(names, "study", stage))
        return {
            "study": study_data(study),
            "class_names": c["class_names"],
            "inputs": c["inputs"],
            "loggers": c["tracking"]["loggers"],
        }
    if stage == "study":
        study = r.study(need(names, "study", stage))
        mlflow = c["tracking"]["mlflow"]
        return {
            "study": study_data(study),
            "n_trials": study["n_trials"],
            "base_model_file": r.base_model_file(study["base_model"]),
            "mlflow": mlflow,
        }
    if stage == "predict":  # the checkpoint holds the model: any name is a column prefix
        return {"model": need(names, "model", stage), "control": bool(r.control)}
    if stage == "evaluate":
        model = need(names, "model", stage)
        return {
            "model": r.model_name(model),
            "class_names": c["class_names"],
            "evaluate": c["evaluate"],
            "parameters": r.scan(model),
            "tasks": r.model(model)["model"]["tasks"],
        }
    if stage == "export":  # the checkpoint holds the model: any name is an output prefix
        model = need(names, "model", stage)
        return {"model": model, "signal": c["evaluate"]["signal"], **c["export"]}
    if stage == "compare":
        return {"models": c["models"]}
    if stage == "track":
        return {
            "mlflow": c["tracking"]["mlflow"],
            "models": c["models"],
            "exported": r.exported,
            "plots": r.evaluate_plots,
        }
    return {  # report
        "class_names": c["class_names"],
        "evaluate": c["evaluate"],
        "report": c["report"],
        "negative_weights": c["prepare"]["negative_weights"],
        "parameters": {m: r.scan(m) for m in c["models"]},
        "config_hash": r.config_hash,
        "models": c["models"],
        "exported": r.exported,
        "studies": r.tuned_studies,
        "samples": [s["name"] for s in c["samples"]],
    }


def train_data(r: Any, name: str) -> dict[str, Any]:
    model = r.model(name)
    return {
        "name": name,
        "class_names": r.config["class_names"],
        "inputs": r.config["inputs"],
        "model": model_data(model),
        "loggers": r.config["tracking"]["loggers"],
    }


def study_data(study: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "base_model", "metric", "direction", "sampler", "seed", "pruner", "space")
    return {k: study[k] for k in keys} | {
        "storage": study["storage"],
        "model": model_data(study["model"]),
    }


def trial_contract(tune: TuneContract, job: int, params: Mapping[str, Any], where: str) -> Any:
    """The train contract of trial job ``job``: the base model with the trial's ``params``
    (dotted keys) applied and validated, named ``<study>-<job>``."""
    from hepsnake.config.loading import with_params

    model = model_data(with_params(to_data(tune.study.model), dict(params), where))
    data = {
        "name": f"{tune.study.name}-{job}",
        "class_names": to_data(tune.class_names),
        "inputs": to_data(tune.inputs),
        "model": model,
        "loggers": to_data(tune.loggers),
    }
    return build(TrainContract, data)


def trained(
    train: TrainContract, norm: Mapping[str, Any], class_weights: Sequence[float]
) -> Trained:
    """The record of a model trained by ``train`` on inputs normalised by ``norm``, with the
    class weights (of the norm stage) applied when its training says so."""
    model = train.model
    return build(
        Trained,
        {
            "model_cfg": to_data(model.model),
            "training_cfg": to_data(model.training),
            "inputs": to_data(train.inputs),
            "norm": dict(norm),
            "class_names": list(train.class_names),
            "class_weights": list(class_weights) if model.training.class_weights else None,
            "parameters": to_data(model.parameters),
            "adversarial": to_data(model.adversarial),
        },
    )


def stage_digest(resolved: Any, stage: str, **names: str) -> str:
    """The hash of ``stage``'s contract: a rule's params, so Snakemake reruns a job exactly
    when what its stage reads changes."""
    return digest(contract(resolved, stage, **names))


def part_digest(resolved: Any, sample: str) -> str:
    """The hash of what a convert job of one part of ``sample`` reads: the sample's convert
    contract less ``convert.max_failed_fraction``, which only the gather judges (changing it
    reruns no part)."""
    c = contract(resolved, "convert", sample=sample)
    return digest(replace(c, convert=replace(c.convert, max_failed_fraction=0.0)))
