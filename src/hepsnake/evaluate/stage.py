"""The ``evaluate`` stage: metrics of one model's predictions → ``results/metrics/{model}.json``."""

from typing import Any

import h5py

from hepsnake.evaluate.metrics import model_metrics
from hepsnake.io.atomic import write_json


def evaluate(config: dict[str, Any], model: str, predictions: str, output: str) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions and write them as JSON."""
    ev = config["evaluate"]
    with h5py.File(predictions, "r") as h5:
        jets = h5["jets"][:]
    train_masses = config.get("simulate", {}).get("masses", {}).get("train")
    metrics = {
        "model": model,
        **model_metrics(
            jets, model, config["class_names"], ev["signal"], ev["working_points"], train_masses
        ),
    }
    write_json(output, metrics)
    return metrics
