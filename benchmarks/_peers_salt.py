"""Salt's side of the training and inference comparison: the config of the same GN2-like
architecture, and its ``salt fit``, ``salt test`` and ``to_onnx`` runs in Salt's own venv.

The architecture (:class:`Arch`) is read from hepsnake's model YAML, so both sides get the
same embedding width, init nets, transformer layers and heads with gated dense blocks,
global attention pooling, head widths and (optionally) the track-origin task, the same
optimiser (AdamW, one-cycle schedule with PyTorch's defaults), gradient clipping, batch
size and epochs. What stays different, by design of each tool:

* Salt adds no mask after its transformer layers; hepsnake re-zeroes padded slots after each
  layer (both append one learned register token: gn2.yaml's ``registers: 1``);
* Salt's layer norms have no affine parameters; hepsnake's do;
* hepsnake also feeds the jet variables to the heads beside the pooled vector;
* Salt normalises in its data loader, hepsnake inside the graph.

The init nets end linear on both sides (gn2.yaml's ``final_activation: false``). With the
others set alike (identity layer norms, zero head weights on the jet variables) hepsnake's
tagger carrying a trained Salt model's weights gives Salt's test predictions to 3e-7 (the jet
variables come first in Salt's init-net inputs, last in hepsnake's: the columns are swapped).
"""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BENCHMARKS = Path(__file__).resolve().parent
NAME = "SaltGN2"  # Salt's ONNX model name: no "_" or "-"
# one-cycle defaults of torch.optim.lr_scheduler.OneCycleLR, which hepsnake uses
DIV_FACTOR, FINAL_DIV_FACTOR, PCT_START = 25.0, 1.0e4, 0.3


@dataclass(frozen=True)
class Arch:
    """The GN2-like architecture and training settings both sides share."""

    dim: int
    init_hidden: list[int]
    layers: int
    heads: int
    registers: int  # learned tokens in the encoder and the pooling (Salt needs at least 1)
    head_hidden: list[int]
    origin: dict[str, Any] | None  # the track-origin task block, None without it
    batch_size: int
    epochs: int
    lr: float
    weight_decay: float
    gradient_clip: float | None
    seed: int


def arch(model: dict[str, Any], aux: bool, batch_size: int, epochs: int) -> Arch:
    """The :class:`Arch` of a validated hepsnake model config (``load_model``)."""
    net, training = model["model"], model["training"]
    init = net.get("init_nets", {})
    origin = next((t for t in net["tasks"] if t.get("name") == "track_origin"), None)
    return Arch(
        dim=net["dim"],
        init_hidden=list(init.get("default", {"hidden": [net["dim"]]})["hidden"]),
        layers=net["encoder"]["layers"],
        heads=net["encoder"]["heads"],
        registers=net["encoder"].get("registers", 0),
        head_hidden=list(net.get("head", {"hidden": [net["dim"]]})["hidden"]),
        origin=origin if aux else None,
        batch_size=batch_size,
        epochs=epochs,
        lr=training["lr"],
        weight_decay=training["weight_decay"],
        gradient_clip=training["gradient_clip"],
        seed=training["seed"],
    )


def dense(n_in: int, hidden: list[int], n_out: int, context: int = 0) -> dict[str, Any]:
    config = {"input_size": n_in, "output_size": n_out, "hidden_layers": hidden}
    return config | {"activation": "SiLU", "context_size": context}


def tasks(a: Arch, class_names: list[str]) -> list[dict[str, Any]]:
    """The jet classification (class dict weights times ``train_weight``, as hepsnake) and,
    with ``a.origin``, the track-origin task on ``tracks`` with the pooled jet as context."""
    out = [
        {
            "class_path": "salt.models.ClassificationTask",
            "init_args": {
                "name": "jets_classification",
                "input_name": "jets",
                "label": "flavour_label",
                "use_class_dict": True,
                "sample_weight": "train_weight",
                "loss": {
                    "class_path": "torch.nn.CrossEntropyLoss",
                    "init_args": {"reduction": "none"},
                },
                "dense_config": dense(a.dim, a.head_hidden, len(class_names)),
            },
        }
    ]
    if a.origin:
        origin = a.origin
        out.append(
            {
                "class_path": "salt.models.ClassificationTask",
                "init_args": {
                    "name": "track_origin",
                    "input_name": origin["collection"],
                    "label": origin["label"],
                    "class_names": list(origin["classes"]),
                    "weight": origin["weight"],
                    "loss": {"class_path": "torch.nn.CrossEntropyLoss"},
                    "dense_config": dense(
                        a.dim, a.head_hidden, len(origin["classes"]), context=a.dim
                    ),
                },
            }
        )
    return out


def config(
    a: Arch,
    inputs: dict[str, Any],
    class_names: list[str],
    files: dict[str, str],
    outdir: Path,
    timing: Path,
    workers: int,
) -> dict[str, Any]:
    """``salt fit``'s config for the prepared ``files`` (train, val, test, norm, class_dict):
    the jet variables joined to every constituent (Salt's default) and ``inputs``'s
    variables as the norm dict's fields."""
    variables = inputs["variables"]
    collections = [c for c in variables if c != "jets"]
    fields = norm_fields(files["norm"])
    model = {
        "init_nets": [{"input_name": c, "dense_config": dense_init(a)} for c in collections],
        "encoder": {
            "class_path": "salt.models.TransformerV2",
            "init_args": {
                "num_layers": a.layers,
                "embed_dim": a.dim,
                "attn_type": "torch-math",
                "num_registers": a.registers,
                "attn_kwargs": {"num_heads": a.heads},
                "dense_kwargs": {"activation": "SiLU", "gated": True},
            },
        },
        "pool_net": {
            "class_path": "salt.models.GlobalAttentionPooling",
            "init_args": {"input_size": a.dim},
        },
        "tasks": {
            "class_path": "torch.nn.ModuleList",
            "init_args": {"modules": tasks(a, class_names)},
        },
    }
    initial = a.lr / DIV_FACTOR
    return {
        "name": NAME,
        "seed_everything": a.seed,
        "data": {
            "variables": {c: fields[c] for c in variables},
            "input_map": {c: c for c in variables},
            "global_object": "jets",
            "train_file": files["train"],
            "val_file": files["val"],
            "test_file": files["test"],
            "norm_dict": files["norm"],
            "class_dict": files["class_dict"],
            "num_inputs": dict(inputs["num_inputs"]),
            "batch_size": a.batch_size,
            "num_workers": workers,
            "persistent_workers": workers > 0,
            "prefetch_factor": 2 if workers else None,
            "pin_memory": False,
            "num_train": -1,
            "num_val": -1,
            "num_test": -1,
        },
        "trainer": {
            "max_epochs": a.epochs,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "default_root_dir": str(outdir),
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "gradient_clip_val": a.gradient_clip,
            "callbacks": [
                {
                    "class_path": "salt.callbacks.Checkpoint",
                    "init_args": {"monitor_loss": "val/jets_classification_loss"},
                },
                {"class_path": "salt.callbacks.PredictionWriter"},
                {"class_path": "_peers_timing.EpochTimer", "init_args": {"path": str(timing)}},
            ],
        },
        "model": {
            "lrs_config": {
                "initial": initial,
                "max": a.lr,
                "end": initial / FINAL_DIV_FACTOR,
                "pct_start": PCT_START,
                "weight_decay": a.weight_decay,
            },
            "model": {"class_path": "salt.models.SaltModel", "init_args": model},
        },
    }


def dense_init(a: Arch) -> dict[str, Any]:
    """An init net's dense config (its input size is filled in by Salt from the variables)."""
    return {"output_size": a.dim, "hidden_layers": a.init_hidden, "activation": "SiLU"}


def norm_fields(norm_path: str) -> dict[str, list[str]]:
    """Per collection the fields of hepsnake's norm dict, in order: the variables its models
    read (transformed inputs are their own fields, e.g. ``log_pt``)."""
    norm = yaml.safe_load(Path(norm_path).read_text())
    return {c: list(entries) for c, entries in norm.items()}


def environment(threads: int) -> dict[str, str]:
    """Salt's environment: ``threads`` torch threads, this directory importable (the timer),
    no Comet upload."""
    env = dict(os.environ)
    env.pop("COMET_API_KEY", None)
    env["PYTHONPATH"] = str(BENCHMARKS)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def run(bin_dir: Path, args: list[str], cwd: Path, threads: int, log: Path) -> None:
    """Run a Salt command (``bin_dir/<args[0]>``) in ``cwd``; on failure raise with the log's
    last lines."""
    with log.open("w") as out:
        proc = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            cwd=cwd,
            env=environment(threads),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(args[:2])}` failed (exit {proc.returncode}):\n{tail}")


def fit(bin_dir: Path, cfg: dict[str, Any], workdir: Path, threads: int) -> Path:
    """``salt fit`` on ``cfg``; the run's log directory (config.yaml, ckpts/)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "salt_config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run(
        bin_dir,
        ["salt", "fit", "--config", str(path), "--force"],
        workdir,
        threads,
        workdir / "fit.log",
    )
    runs = sorted(Path(cfg["trainer"]["default_root_dir"]).glob(f"{NAME}_*"))
    if not runs:
        raise RuntimeError(
            f"salt fit wrote no run directory under {cfg['trainer']['default_root_dir']}"
        )
    return runs[-1]


def test(bin_dir: Path, run_dir: Path, threads: int) -> Path:
    """``salt test`` of the best checkpoint on the config's test file; the predictions file."""
    config_path = run_dir / "config.yaml"
    run(
        bin_dir,
        ["salt", "test", "--config", str(config_path), "--force"],
        run_dir,
        threads,
        run_dir / "test.log",
    )
    found = sorted((run_dir / "ckpts").glob("*__test_*.h5"))
    if not found:
        raise RuntimeError(f"salt test wrote no predictions under {run_dir / 'ckpts'}")
    return found[-1]


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint with the lowest validation loss (Salt names it in the file name)."""
    ckpts = list((run_dir / "ckpts").glob("*.ckpt"))
    return min(ckpts, key=lambda p: float(p.stem.rsplit("=", 1)[-1]))


def to_onnx(bin_dir: Path, run_dir: Path, threads: int) -> Path:
    """Salt's ``to_onnx`` of the best checkpoint: ``run_dir/network.onnx``."""
    ckpt = best_checkpoint(run_dir)
    args = ["to_onnx", "--ckpt_path", str(ckpt), "--force", "--overwrite", "--name", NAME]
    run(bin_dir, args, run_dir, threads, run_dir / "to_onnx.log")
    return run_dir / "network.onnx"


def timings(path: Path) -> list[dict[str, Any]]:
    """The :class:`_peers_timing.EpochTimer` records of one run."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
