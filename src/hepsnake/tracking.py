"""Experiment tracking: extra Lightning loggers, and MLflow runs of trained models and trials.

MLflow runs are written after the fact from the files the rules made (training metrics per
epoch, the model YAML, plots, ONNX files), by one job at a time (rule track, rule tune_best),
so parallel training jobs never write to the tracking store. Credentials come only from the
environment (``MLFLOW_TRACKING_TOKEN``, ...): the config refuses a URI that embeds one.
"""

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepsnake.errors import HepsnakeError

if TYPE_CHECKING:
    from hepsnake.config.contracts import Mlflow, TrackContract, TrainingSpec

MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
LOCAL_STORE = "mlflow.db"  # a directory URI holds DIR/mlflow.db and DIR/artifacts


def lightning_loggers(names: Sequence[str], out: Path, training: "TrainingSpec") -> list[Any]:
    """The Lightning loggers ``tracking.loggers`` selects, writing under ``out``.

    ``tensorboard`` is that of ``training.tensorboard`` (not added twice); ``wandb`` and
    ``comet`` need their packages and read keys and offline mode from the environment.
    """
    loggers: list[Any] = []
    for name in names:
        try:
            if name == "tensorboard" and not training.tensorboard:
                from lightning.pytorch.loggers import TensorBoardLogger

                loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
            elif name == "wandb":
                from lightning.pytorch.loggers import WandbLogger

                loggers.append(WandbLogger(save_dir=str(out), name=out.name))
            elif name == "comet":
                from lightning.pytorch.loggers import CometLogger

                loggers.append(CometLogger(save_dir=str(out), name=out.name))
        except ModuleNotFoundError as exc:
            raise HepsnakeError(
                "config: tracking/loggers", f"'{name}' needs `pip install {exc.name}`"
            ) from None
    return loggers


def store(settings: "Mlflow") -> tuple[str, str | None]:
    """The tracking URI and, for a directory, its artefact root (None: the server's)."""
    uri = settings.uri
    if "://" in uri or uri.startswith(("databricks", "file:")):
        return uri, None
    root = Path(uri).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / LOCAL_STORE}", (root / "artifacts").as_uri()


def experiment(settings: "Mlflow") -> tuple[Any, str]:
    """An ``MlflowClient`` of ``settings`` (``tracking.mlflow``) and its experiment's id."""
    import mlflow

    uri, artifacts = store(settings)
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(settings.experiment)
    if found is not None:
        return client, found.experiment_id
    return client, client.create_experiment(settings.experiment, artifact_location=artifacts)


def flat_params(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow params: dotted keys, values as text (an empty mapping
    at the top gives none)."""
    if isinstance(data, dict) and (data or not prefix):
        out: dict[str, str] = {}
        for key, value in data.items():
            out |= flat_params(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): str(data)[:MAX_PARAM]}


def log_run(
    client: Any,
    experiment_id: str,
    name: str,
    params: dict[str, Any],
    epochs: Iterable[dict[str, Any]],
    artifacts: Iterable[tuple[str | Path, str]] = (),
    tags: dict[str, str] | None = None,
    parent: str | None = None,
) -> str:
    """One finished MLflow run: ``params`` (flattened), each epoch record's numbers as
    metrics at step ``epoch``, and each (file, artefact folder); a child of ``parent``."""
    from mlflow.entities import Metric, Param

    tags = dict(tags or {}) | ({"mlflow.parentRunId": parent} if parent else {})
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, int(record["epoch"]))
        for record in epochs
        for key, value in record.items()
        if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool)
    ]
    param_list = [Param(k, v) for k, v in flat_params(params).items()]
    for start in range(0, max(len(metrics), len(param_list)), 100):  # MLflow's batch limit
        client.log_batch(
            run_id, metrics=metrics[start : start + 100], params=param_list[start : start + 100]
        )
    for path, folder in artifacts:
        client.log_artifact(run_id, str(path), artifact_path=folder or None)
    client.set_terminated(run_id)
    return run_id


def track_models(
    contract: "TrackContract", model_dirs: Sequence[str], artifacts: Sequence[str], output: str
) -> dict[str, str]:
    """One MLflow run per trained model (``results/models/<model>``): its model config as
    params, per-epoch metrics, ``config.yaml`` and ``metrics.json`` and the ``artifacts``
    below a folder of the model's name (plots, ONNX files) attached; the run ids → ``output``."""
    from hepsnake.io.atomic import write_json
    from hepsnake.io.files import TRAINING_METRICS_KIND, read_json, read_yaml

    settings = contract.mlflow
    if settings is None:
        raise HepsnakeError("config: tracking/mlflow", "not set: nothing to track to")
    client, experiment_id = experiment(settings)
    runs = {}
    for model_dir in map(Path, model_dirs):
        name = model_dir.name
        trained = read_yaml(model_dir / "config.yaml", "trained model's config.yaml")
        epochs = read_json(model_dir / "metrics.json", TRAINING_METRICS_KIND, ["epochs"])["epochs"]
        files = [(model_dir / "config.yaml", ""), (model_dir / "metrics.json", "")]
        files += [(a, Path(a).parent.parent.name) for a in artifacts if Path(a).parent.name == name]
        runs[name] = log_run(
            client,
            experiment_id,
            name,
            trained["model"],
            epochs,
            files,
            tags={"hepsnake.model": name},
        )
    write_json(output, {"experiment_id": experiment_id, "runs": runs})
    return runs
