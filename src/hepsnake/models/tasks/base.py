"""What every task shares: its name, loss weight and the trunk outputs its head reads.

A task is a plain class (importing it costs no torch): it builds its head (an ``nn.Module``),
names the label fields the loader must read, computes its loss from the head's output and
the batch, turns the output into named prediction fields (names from :mod:`hepsnake.names`;
the same names are the ONNX outputs), and scores the predictions file with numpy.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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


class Task(ABC):
    """Base of every task. ``level`` says what one prediction is about (``jet``,
    ``constituent``), ``dataset`` where its prediction fields are written."""

    level: ClassVar[str]

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


def plot_name(task: str, what: str) -> str:
    """The file name of a task's plot: ``{task}_{what}.png`` in the model's ``tasks`` plots."""
    return f"{task}_{what}.png"


def label_key(dataset: str, name: str) -> str:
    """The batch key of a label field: ``name`` for jets, ``dataset/name`` otherwise."""
    return name if dataset == "jets" else f"{dataset}/{name}"
