"""The ``train`` stage: build the model from config, fit with Lightning, resume after a kill."""

import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from hepsnake.config.contracts import TrainContract, TrainingSpec, trained
from hepsnake.config.typed import to_data
from hepsnake.data.loader import H5Batches
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import copy_atomic, name_failed_writes, write_yaml
from hepsnake.io.files import open_h5
from hepsnake.models.checkpoint import HASH_KEY, config_sha256, read_checkpoint
from hepsnake.paths import MODEL_FILES
from hepsnake.prepare.norm import read_class_weights, read_norm_dict
from hepsnake.tracking import lightning_loggers
from hepsnake.training.adversarial import AdversarialModule
from hepsnake.training.callbacks import (
    AtomicModelCheckpoint,
    InPlaceCheckpointIO,
    MetricsSummary,
    ResumeCheckpoint,
)
from hepsnake.training.datamodule import H5DataModule
from hepsnake.training.finite import FiniteLoss, NonFiniteError
from hepsnake.training.module import TaggerModule
from hepsnake.tune.callbacks import ValAUC

log = logging.getLogger("hepsnake")


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16-mixed where a CUDA device is used, 32-true on CPU."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if on_gpu else "32-true"


def build_module(
    contract: TrainContract, norm: dict[str, Any], class_weights: list[float]
) -> TaggerModule:
    """The Lightning module of the contract's model (adversarial when configured)."""
    record = trained(contract, norm, class_weights)
    if record.adversarial is not None:
        return AdversarialModule(record)
    return TaggerModule(record)


def regression_stats(contract: TrainContract, train_path: str) -> TrainContract:
    """``contract`` with each jet regression's ``mean``/``std`` (when not configured) from
    the finite target values of the training jets: they are then saved with the model."""
    tasks = []
    for task in contract.model.model.tasks:
        options = task.options
        if task.type != "jet_regression" or ("mean" in options and "std" in options):
            tasks.append(task)
            continue
        target = options["target"]
        with open_h5(train_path, "training split", ["jets"]) as h5:
            if target not in (h5["jets"].dtype.names or ()):
                raise HepsnakeError(train_path, f"regression target '{target}' missing")
            values = h5["jets"].fields(target)[:].astype(np.float64)
        finite = values[np.isfinite(values)]
        if not len(finite):
            raise HepsnakeError(train_path, f"regression target '{target}' is never finite")
        stats = {"mean": float(finite.mean()), "std": float(finite.std()) or 1.0}
        tasks.append(replace(task, options=MappingProxyType(stats | dict(options))))
    model = replace(contract.model.model, tasks=tuple(tasks))
    return replace(contract, model=replace(contract.model, model=model))


def batches(
    path: str,
    module: TaggerModule,
    cfg: TrainingSpec,
    train: bool,
    extra: tuple[tuple[str, str], ...],
) -> H5Batches | WithParameters:
    """Loader of one split; parameterised models get background parameters drawn."""
    loader = H5Batches(
        path,
        module.spec,
        cfg.batch_size,
        shuffle=train,
        seed=cfg.seed,
        limit=cfg.limit_train_jets if train else None,
        extra_fields=extra,
    )
    parameters = module.trained.parameters
    if not parameters:
        return loader
    return WithParameters(loader, ParameterSampler(parameters), cfg.seed + int(not train))


MIN_STEPS = 10  # optimiser steps per epoch below which the batch is reduced


def small_sample_batch(path: str, module: TaggerModule, cfg: TrainingSpec) -> TrainingSpec:
    """``cfg`` with the batch reduced to ``ceil(n_train / MIN_STEPS)`` (at least 1) when an
    epoch over the training jets would take fewer than ``MIN_STEPS`` optimiser steps."""
    n_train = H5Batches(path, module.spec, 1, limit=cfg.limit_train_jets).n_jets
    size = cfg.batch_size
    if math.ceil(n_train / size) >= MIN_STEPS:
        return cfg
    reduced = max(1, math.ceil(n_train / MIN_STEPS))
    if reduced >= size:
        return cfg
    log.warning(
        "only %d training jets: batch_size %d would give %d optimiser step(s) per epoch; "
        "using batch_size %d (%d steps)",
        n_train,
        size,
        math.ceil(n_train / size),
        reduced,
        math.ceil(n_train / reduced),
    )
    return replace(cfg, batch_size=reduced)


def can_resume(resume: Path, module: TaggerModule) -> bool:
    """Whether ``resume`` exists and was written for the same config (else say why not)."""
    if not resume.exists():
        return False
    try:
        stored = read_checkpoint(resume).get(HASH_KEY)
    except HepsnakeError as error:
        log.warning("cannot resume (%s): starting fresh", error)
        return False
    if stored != config_sha256(module.hparams):
        log.warning("config changed since %s: starting fresh", resume)
        return False
    return True


def train(
    contract: TrainContract,
    train_path: str,
    val_path: str,
    norm_path: str,
    class_dict_path: str,
    outdir: str,
    threads: int = 1,
    control_paths: dict[str, str] | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
) -> dict[str, Any]:
    """Train the contract's model; write the files of :data:`hepsnake.paths.MODEL_FILES`:
    best.ckpt, last.ckpt, metrics.csv/json, config.yaml (the contract).

    Work in progress lives in ``outdir/.work`` (not a Snakemake output, so a killed job keeps
    it); a rerun resumes from ``.work/resume.ckpt`` and ends as an uninterrupted run would.
    A non-finite loss, gradient or validation output stops the run with one error line
    (:mod:`~hepsnake.training.finite`) and removes ``.work`` and ``metrics.json``: no
    checkpoint is left to resume from or to evaluate. ``extra_callbacks`` (a tuning trial's
    pruning) run after the others.
    """
    cfg = contract.model.training
    out = Path(outdir)
    work = out / ".work"
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    norm = read_norm_dict(norm_path, contract.inputs)
    class_weights = read_class_weights(class_dict_path, len(contract.class_names))
    contract = regression_stats(contract, train_path)
    module = build_module(contract, norm, class_weights)
    resume = work / "resume.ckpt"
    resuming = can_resume(resume, module)
    if not resuming and work.exists() and rank_zero_only.rank == 0:
        shutil.rmtree(work)  # stale state of another config (or a run killed in epoch 0)
    work.mkdir(parents=True, exist_ok=True)
    cfg = small_sample_batch(train_path, module, cfg)
    extra = tuple(label for task in module.model.tasks for label in task.labels())
    control = {}
    if isinstance(module, AdversarialModule):
        if not control_paths:
            raise HepsnakeError(outdir, "an adversarial model needs the control-region splits")
        control = {
            split: batches(
                path, module, cfg, split == "train", (("jets", "is_data"), ("jets", "pt"))
            )
            for split, path in control_paths.items()
        }
    data = H5DataModule(
        batches(train_path, module, cfg, True, extra),
        batches(val_path, module, cfg, False, extra),
        control,
    )
    monitor = "val_loss_gated" if control else "val_loss"
    warnings: list[dict[str, Any]] = []  # from the callbacks, into metrics.json
    metrics = MetricsSummary(
        out / MODEL_FILES["json"], monitor=monitor, echo=cfg.print_metrics, warnings=warnings
    )
    best = AtomicModelCheckpoint(
        dirpath=work,
        filename="best",
        monitor=monitor,
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    finite = FiniteLoss(contract.name, module.spec)
    callbacks: list[L.Callback] = [
        finite,
        ValAUC(warnings),
        best,
        metrics,
        ResumeCheckpoint(work / "resume.ckpt"),
    ]
    if cfg.early_stopping:
        # on the plain validation loss: epochs failing the K-S gate (penalised in
        # val_loss_gated) would otherwise stop a run whose loss is still falling
        stop = cfg.early_stopping
        callbacks.append(
            EarlyStopping(
                monitor="val_loss", mode="min", patience=stop.patience, min_delta=stop.min_delta
            )
        )
    loggers: list[Any] = [CSVLogger(work, name="csv", version="")]
    if cfg.tensorboard:
        loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
    loggers += lightning_loggers(contract.loggers, out, cfg)
    callbacks += extra_callbacks
    accelerator = cfg.accelerator
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=cfg.devices,
        strategy="ddp" if cfg.devices not in (1, "1", "auto") else "auto",
        precision=resolve_precision(cfg.precision, accelerator),
        max_epochs=cfg.max_epochs,
        gradient_clip_val=None if control else cfg.gradient_clip,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=work,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0,
        deterministic=accelerator == "cpu",
        plugins=[InPlaceCheckpointIO()],
    )
    # deterministic algorithms without torch's debugging aid that comes with them, filling
    # every new tensor with NaN first (~40 % of a CPU step of a small transformer); kernels
    # write every element they return, so the results are the same
    torch.utils.deterministic.fill_uninitialized_memory = False
    if cfg.compile:
        # in place: the state_dict keys (and so the checkpoints) stay those of the plain model
        module.model.compile(backend=cfg.compile_backend)
    if resuming:
        log.info("resuming from %s", resume)
    with name_failed_writes(out):  # the model folder, not a logger's or library's temporary
        try:
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(resume) if resuming else None,
                weights_only=True,
            )
        except NonFiniteError:
            if trainer.is_global_zero:
                shutil.rmtree(work, ignore_errors=True)
                (out / MODEL_FILES["json"]).unlink(missing_ok=True)
            raise
        if not trainer.is_global_zero:
            return {}
        if not best.best_model_path:
            raise HepsnakeError(outdir, "training produced no checkpoint (no validation batches?)")
        copy_atomic(best.best_model_path, out / MODEL_FILES["best"])
        copy_atomic(resume, out / MODEL_FILES["last"])
        copy_atomic(work / "csv" / "metrics.csv", out / MODEL_FILES["csv"])
        write_yaml(out / MODEL_FILES["config"], to_data(contract))
    shutil.rmtree(work)
    summary = metrics.summary()
    if summary.get("gate_fallback"):
        log.warning("no epoch passed the K-S gate: best.ckpt has the lowest validation loss")
    return summary
