"""The ``train`` stage: build the model from config, fit with Lightning, resume after a kill."""

import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from hepsnake.data.loader import H5Batches
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_yaml
from hepsnake.prepare.guard import check_inputs
from hepsnake.training.callbacks import MetricsSummary, ResumeCheckpoint
from hepsnake.training.datamodule import H5DataModule
from hepsnake.training.module import TaggerModule

log = logging.getLogger("hepsnake")


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16-mixed where a CUDA device is used, 32-true on CPU."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if on_gpu else "32-true"


def build_module(
    config: dict[str, Any], norm: dict[str, Any], class_weights: list[float]
) -> TaggerModule:
    """The Lightning module of ``config['model']`` with the prepared norm and class weights."""
    model = config["model"]
    return TaggerModule(
        model["model"],
        model["training"],
        config["inputs"],
        norm,
        config["class_names"],
        class_weights if model["training"]["class_weights"] else None,
        model.get("parameters"),
    )


def train(
    config: dict[str, Any],
    train_path: str,
    val_path: str,
    norm_path: str,
    class_dict_path: str,
    outdir: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Train ``config['model']``; write best.ckpt, last.ckpt, metrics.csv/json, config.yaml.

    Work in progress lives in ``outdir/.work`` (not a Snakemake output, so a killed job keeps
    it); a rerun resumes from ``.work/resume.ckpt`` and ends as an uninterrupted run would.
    """
    check_inputs(config["inputs"])
    model_cfg = config["model"]
    cfg = model_cfg["training"]
    out = Path(outdir)
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    norm = yaml.safe_load(Path(norm_path).read_text())
    class_weights = yaml.safe_load(Path(class_dict_path).read_text())["jets"]["label"]
    module = build_module(config, norm, class_weights)
    spec = module.spec
    extra = (model_cfg["model"]["aux"]["target"],) if model_cfg["model"].get("aux") else ()
    data = H5DataModule(
        H5Batches(
            train_path,
            spec,
            cfg["batch_size"],
            True,
            cfg["seed"],
            cfg.get("limit_train_jets"),
            extra,
        ),
        H5Batches(val_path, spec, cfg["batch_size"], extra_jet_fields=extra),
    )
    metrics = MetricsSummary(out / "metrics.json", echo=cfg["print_metrics"])
    best = ModelCheckpoint(
        dirpath=work,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[L.Callback] = [best, metrics, ResumeCheckpoint(work / "resume.ckpt")]
    if cfg["early_stopping"]:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", **cfg["early_stopping"]))
    loggers: list[Any] = [CSVLogger(work, name="csv", version="")]
    if cfg["tensorboard"]:
        loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
    accelerator = cfg["accelerator"]
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=cfg["devices"],
        strategy="ddp" if cfg["devices"] not in (1, "1", "auto") else "auto",
        precision=resolve_precision(cfg["precision"], accelerator),
        max_epochs=cfg["max_epochs"],
        gradient_clip_val=cfg["gradient_clip"],
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=work,
        enable_progress_bar=cfg["progress_bar"],
        enable_model_summary=False,
        reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0,
        deterministic=accelerator == "cpu",
    )
    if cfg["compile"]:
        module.model = torch.compile(module.model)
    resume = work / "resume.ckpt"
    if resume.exists():
        log.info("resuming from %s", resume)
    trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume.exists() else None)
    if not trainer.is_global_zero:
        return {}
    if not best.best_model_path:
        raise HepsnakeError(outdir, "training produced no checkpoint (no validation batches?)")
    shutil.copyfile(best.best_model_path, out / "best.ckpt")
    shutil.copyfile(resume, out / "last.ckpt")
    shutil.copyfile(work / "csv" / "metrics.csv", out / "metrics.csv")
    write_yaml(out / "config.yaml", config)
    shutil.rmtree(work)
    return metrics.summary()
