"""Tasks: each owns its label, head, loss, prediction fields, ONNX outputs, metrics and plots."""

from collections.abc import Mapping, Sequence
from typing import Any

from hepsnake.models import registry
from hepsnake.models.tasks.base import Context, Task

DEFAULT = ({"type": "jet_classification"},)  # the tasks of a model that names none


def build_tasks(blocks: Sequence[Mapping[str, Any]] | None, context: Context) -> list[Task]:
    """The tasks of validated task ``blocks`` (none: :data:`DEFAULT`), the headline first."""
    tasks = [registry.build("task", b, context=context) for b in blocks or DEFAULT]
    return sorted(tasks, key=lambda t: not t.headline)
