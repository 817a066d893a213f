"""Experiment tracking: MLflow runs read back through MLflow's API, no credentials in the
config, the Lightning loggers tracking.loggers selects, and ``hepsnake compare``."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, default_config, training_spec

from hepsnake.cli import main
from hepsnake.errors import HepsnakeError
from hepsnake.tracking import flat_params, lightning_loggers

EPOCHS = [
    {"epoch": 0, "val_loss": 0.9, "val_auc": 0.70, "val_ks_pqcd": 0.20, "val_ks_psig": 0.10,
     "val_ks_psig_pt20_50": 0.9, "val_ks_pass": 0.0},
    {"epoch": 1, "val_loss": 0.7, "val_auc": 0.80, "val_ks_pqcd": 0.05, "val_ks_psig": 0.02,
     "val_ks_psig_pt20_50": 0.9, "val_ks_pass": 1.0},
    {"epoch": 2, "val_loss": 0.8, "val_auc": 0.85, "val_ks_pqcd": 0.10, "val_ks_psig": 0.10,
     "val_ks_psig_pt20_50": 0.0, "val_ks_pass": 0.0},
]  # fmt: skip


SAMPLE = {"name": "qcd", "files": ["qcd.root"], "reader": "toy", "label": "qcd"}


def trained_model(root: Path, name: str, epochs: list[dict]) -> Path:
    """A results/models/<name> dir as rule train leaves it (config.yaml, metrics.json)."""
    model_dir = root / "models" / name
    model_dir.mkdir(parents=True)
    model = {"model": {"head": {"hidden": [16, 8]}}, "training": {"lr": 0.003, "max_epochs": 3}}
    (model_dir / "config.yaml").write_text(yaml.safe_dump({"model_name": name, "model": model}))
    (model_dir / "metrics.json").write_text(json.dumps({"epochs": epochs}))
    return model_dir


def test_mlflow_run_reads_back_params_metrics_and_artefacts(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    model_dir = trained_model(tmp_path / "results", "dense", EPOCHS)
    plot = tmp_path / "results" / "plots" / "dense" / "roc.png"
    onnx = tmp_path / "results" / "export" / "dense" / "model.onnx"
    other = tmp_path / "results" / "plots" / "baseline" / "roc.png"
    for path in (plot, onnx, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG" + path.name.encode())
    config = default_config() | {
        "samples": str(REPO / "config" / "samples.tsv"),
        "model_dir": str(REPO / "config" / "models"),
        "tracking": {"mlflow": {"uri": "results/mlruns", "experiment": "toy"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "results" / "tracking" / "runs.json"
    argv = ["track", "--config", "config.yaml", "--models", str(model_dir)]
    assert main([*argv, "--artifacts", str(plot), str(onnx), str(other), "--output", str(out)]) == 0

    run_id = json.loads(out.read_text())["runs"]["dense"]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "dense" and run.info.status == "FINISHED"
    assert run.data.params["model.head.hidden"] == "[16, 8]"
    assert run.data.params["training.lr"] == "0.003"
    history = client.get_metric_history(run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.7), (2, 0.8)]
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "metrics.json", "plots", "export"} <= top
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/roc.png"]
    assert [a.path for a in client.list_artifacts(run_id, "export")] == ["export/model.onnx"]
    local = client.download_artifacts(run_id, "export/model.onnx", str(tmp_path))
    assert Path(local).read_bytes() == onnx.read_bytes()


def test_params_are_flat_dotted_text():
    assert flat_params({}) == {}
    assert flat_params({"a": {"b": [1, 2], "c": {}}, "d": None}) == {
        "a.b": "[1, 2]",
        "a.c": "{}",
        "d": "None",
    }


@pytest.mark.parametrize(
    "uri", ["https://user:s3cret@mlflow.example.org", "https://mlflow.example.org/?token=abc"]
)
def test_tracking_uri_with_a_secret_is_refused(config_factory, uri):
    with pytest.raises(HepsnakeError) as error:
        config_factory([SAMPLE], tracking={"mlflow": {"uri": uri}})
    assert str(error.value).startswith("config: tracking/mlflow/uri: embeds a password or token")
    assert "s3cret" not in str(error.value) and "abc" not in str(error.value)


def test_tracking_defaults_are_a_local_store(config_factory):
    config = config_factory([SAMPLE], tracking={"mlflow": {}})
    assert config["tracking"] == {
        "mlflow": {"uri": "results/mlruns", "experiment": "hepsnake"},
        "loggers": [],
    }
    assert config_factory([SAMPLE])["tracking"] == {"mlflow": None, "loggers": []}


def test_loggers_selected_once(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    (tb,) = lightning_loggers(["tensorboard"], tmp_path, training_spec(tensorboard=False))
    assert isinstance(tb, TensorBoardLogger)
    assert lightning_loggers(["tensorboard"], tmp_path, training_spec(tensorboard=True)) == []


def test_compare_ranks_epochs_by_loss_ks_sum_and_auc(tmp_path):
    plain = [{k: v for k, v in e.items() if not k.startswith("val_ks")} for e in EPOCHS]
    runs = {
        "adv": trained_model(tmp_path, "adv", EPOCHS),
        "plain": trained_model(tmp_path, "plain", plain),
    }
    args = [
        "compare",
        "--names",
        *runs,
        "--metrics",
        *(str(p / "metrics.json") for p in runs.values()),
    ]
    table_path, plot = tmp_path / "epochs.json", tmp_path / "epochs.png"
    assert main([*args, "--output", str(table_path), "--plot", str(plot)]) == 0
    rows = {r["name"]: r["best"] for r in json.loads(table_path.read_text())["rows"]}
    assert rows["adv"]["val_loss"] == {"epoch": 1, "value": 0.7}
    # per-class K-S distances added; the pT-binned ones and the pass flag are not
    assert rows["adv"]["ks_sum"] == {"epoch": 1, "value": pytest.approx(0.07)}
    assert rows["adv"]["val_auc"] == {"epoch": 2, "value": 0.85}
    assert rows["plain"]["ks_sum"] is None
    assert plot.stat().st_size > 1000

    from hepsnake.report.compare import compare_section

    lines = compare_section(str(table_path), "plots/compare/epochs.png")
    assert "| adv | 0.7 (epoch 1) | 0.07 (epoch 1) | 0.85 (epoch 2) |" in lines
    assert "| plain | 0.7 (epoch 1) | - | 0.85 (epoch 2) |" in lines


def test_compare_names_a_file_that_is_no_metrics_json(tmp_path, capsys):
    bad = tmp_path / "m.json"
    bad.write_text("[]")
    argv = ["compare", "--names", "x", "--metrics", str(bad), "--output", str(tmp_path / "o.json")]
    assert main([*argv, "--plot", str(tmp_path / "o.png")]) == 1
    assert capsys.readouterr().err.startswith(f"hepsnake compare: error: {bad}: not a training")
    assert not (tmp_path / "o.json").exists()
