"""The ``evaluate`` stage: metrics of one model's predictions → ``results/metrics/{model}.json``."""

from typing import Any

import h5py

from hepsnake.evaluate.metrics import control_ks, model_metrics
from hepsnake.io.atomic import write_json


def evaluate(config: dict[str, Any], model: str, predictions: str, output: str) -> dict[str, Any]:
    """Compute every metric of ``model`` on its test predictions and write them as JSON."""
    ev = config["evaluate"]
    with h5py.File(predictions, "r") as h5:
        jets = h5["jets"][:]
        control = h5["control_jets"][:] if "control_jets" in h5 else None
    train_masses = config.get("simulate", {}).get("masses", {}).get("train")
    metrics = {
        "model": model,
        **model_metrics(
            jets, model, config["class_names"], ev["signal"], ev["working_points"], train_masses
        ),
    }
    if control is not None:
        metrics["control_ks"] = control_ks(control, model, config["class_names"])
    write_json(output, metrics)
    return metrics
