"""What every task shares: its name, loss weight and the trunk outputs its head reads.

A task is a plain class (importing it costs no torch): it builds its head (an ``nn.Module``),
names the label fields the loader must read, computes its loss from the head's output and
the batch (and names what training logs of it), turns the output into named prediction
fields and ONNX outputs (names from :mod:`hepsnake.names`), and scores the predictions file:
its figures and plots. Every stage iterates over the model's tasks through this interface
only; the jet classification is a task like the others.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hepsnake.config.contracts import EvaluateSpec, Scan
from hepsnake.paths import TASK_PLOTS

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn


@dataclass(frozen=True)
class Trunk:
    """What the tagger's trunk hands every head: the jet representation's width
    (pooled constituents + jet variables), the encoded constituents' width ``dim``, the
    constituent collections, and the default head's hidden widths and dropout
    (``model.head``)."""

    jet_width: int
    dim: int
    collections: tuple[str, ...]
    head_hidden: tuple[int, ...]
    head_dropout: float


@dataclass(frozen=True)
class Context:
    """Run facts a task may need: the jet classes and their loss weights."""

    class_names: Sequence[str]
    class_weights: Sequence[float] = field(default_factory=list)


@dataclass
class TrunkOutput:
    """One batch through the trunk: ``jet`` (B, jet_width), per collection the encoded
    constituents (B, n, dim) and their padding masks (B, n; True = real)."""

    jet: "torch.Tensor"
    constituents: dict[str, "torch.Tensor"]
    masks: dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Scoring:
    """What the evaluate stage hands every task's :meth:`Task.score`: the model's name, its
    predictions file (``source``, for errors) and that file's tables by dataset (``jets``;
    ``control_jets`` where the control region was predicted; the collection of each
    constituent-level task), the jets' energy unit, the model's plot folder, the config's
    ``evaluate`` settings and the model's parameter scan (``names`` and ``train`` values;
    both empty for a model without parameters)."""

    model: str
    source: str
    tables: Mapping[str, "np.ndarray"]
    unit: str
    plots: Path
    settings: EvaluateSpec
    parameters: Scan

    @property
    def jets(self) -> "np.ndarray":
        """The predicted test jets."""
        return self.tables["jets"]


@dataclass(frozen=True)
class Scores:
    """What :meth:`Task.score` gives: the task's entry under the metrics' ``tasks``, and the
    figures it puts at the top level of the metrics (the headline task's)."""

    task: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """Base of every task. ``level`` says what one prediction is about (``jet``,
    ``constituent``), ``dataset`` where its prediction fields are written. The ``headline``
    task (the jet classification, one per model) comes first: its outputs lead the
    predictions and the ONNX outputs; its :meth:`score` fills the top level of the metrics.
    A ``scanned`` task is also predicted at every parameter point of a parameterised model."""

    level: ClassVar[str]
    headline: ClassVar[bool] = False
    scanned: ClassVar[bool] = False

    def __init__(self, context: Context, name: str, weight: float = 1.0) -> None:
        self.context = context
        self.name = name
        self.weight = weight

    @property
    def dataset(self) -> str:
        """The predictions-file dataset holding this task's fields."""
        return "jets"

    @property
    def output_key(self) -> str:
        """The key of this task's raw output in the tagger's output dict."""
        return self.name

    @abstractmethod
    def head(self, trunk: Trunk) -> "nn.Module":
        """The head: ``module(TrunkOutput) -> Tensor``."""
        ...

    def labels(self) -> list[tuple[str, str]]:
        """(dataset, field) pairs the training loader reads for this task's loss, into
        the batch key :func:`label_key`."""
        return []

    def truth(self) -> list[str]:
        """Fields of :attr:`dataset` the predictions file keeps for :meth:`evaluate`."""
        return [f for _, f in self.labels()]

    @abstractmethod
    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        """``loss`` (weighted by the jets' ``weight``) and any metrics worth logging."""
        ...

    def logged(self, parts: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """:meth:`loss`'s ``parts`` under the names training logs them by (after the
        ``train_``/``val_`` prefix): ``{task}_{part}``."""
        return {f"{self.name}_{k}": v for k, v in parts.items()}

    @abstractmethod
    def predict_names(self, model: str) -> list[str]:
        """The names of :meth:`predict`'s fields (also the ONNX outputs) for ``model``."""
        ...

    @abstractmethod
    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        """Named prediction fields of one output (B,) or (B, n), as written and exported."""
        ...

    def export_names(self, model: str) -> list[str]:
        """The ONNX outputs of this task: :meth:`predict_names` unless overridden."""
        return self.predict_names(model)

    def export(self, output: "torch.Tensor") -> list["torch.Tensor"]:
        """The ONNX output tensors, in :meth:`export_names` order (traceable ops only)."""
        return list(self.predict(output, "").values())

    @abstractmethod
    def evaluate(
        self, table: "np.ndarray", model: str, jets: "np.ndarray | None" = None
    ) -> dict[str, Any]:
        """Headline figures from :attr:`dataset` of the predictions file (``jets``: its jets
        table, row for row, for figures that need jet truth)."""
        ...

    def plot(
        self,
        table: "np.ndarray",
        model: str,
        directory: Path,
        unit: str,
        jets: "np.ndarray | None" = None,
    ) -> list[str]:
        """Draw this task's plots from :attr:`dataset` into ``directory`` (jet energies in
        ``unit``); their file names."""
        return []

    def score(self, run: Scoring) -> Scores:
        """This task's figures of the evaluate stage: :meth:`evaluate` of its table, with
        ``plots``, the plots :meth:`plot` draws into the model's :data:`TASK_PLOTS` folder."""
        table = run.tables[self.dataset]
        figures = self.evaluate(table, run.model, run.jets)
        directory = run.plots / TASK_PLOTS
        directory.mkdir(parents=True, exist_ok=True)
        drawn = self.plot(table, run.model, directory, run.unit, run.jets)
        return Scores(figures | {"plots": [f"{TASK_PLOTS}/{name}" for name in drawn]})


def plot_name(task: str, what: str) -> str:
    """The file name of a task's plot: ``{task}_{what}.png`` in :data:`TASK_PLOTS`."""
    return f"{task}_{what}.png"


def label_key(dataset: str, name: str) -> str:
    """The batch key of a label field: ``name`` for jets, ``dataset/name`` otherwise."""
    return name if dataset == "jets" else f"{dataset}/{name}"
