"""Tasks: each owns its label, head, loss, prediction fields, ONNX outputs, metrics and plots."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hepsnake.models import registry
from hepsnake.models.tasks.base import Context, Task

if TYPE_CHECKING:
    from hepsnake.config.contracts import Component


def build_tasks(blocks: Sequence["Component"], context: Context) -> list[Task]:
    """The tasks of validated task ``blocks`` (``model.tasks``), the headline first."""
    tasks = [registry.build("task", b, context=context) for b in blocks]
    return sorted(tasks, key=lambda t: not t.headline)
