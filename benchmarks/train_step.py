"""Training throughput (jets/s) of the shipped model against a plain-PyTorch reference.

Builds the model with :func:`hepsnake.training.run.build_module` from config/config.yaml and
config/models/<--model>.yaml with a unit norm dict (over the fields models read), and next
to it a plain-PyTorch reference written here with the same layers (the same ``nn.Linear``
shapes, SiLU, LayerNorm and attention; no hepsnake code; padding masked by multiplying).
Both are timed in the same process on the same batches (``--batch`` jets, 40 tracks and 30
clusters, ~10 / ~8 real, packed first, trimmed to the batch's longest jet as the loader
does): forward + backward + AdamW step, one step of each in turn so that a varying load
hits both alike. ``lightning`` is the shipped module's own ``training_step`` inside
``Trainer.fit`` (metric logging, the DataLoader hand-off, the optimiser and schedule), a
reference step after each of its steps; its ratio to that reference, below the plain
step's, is the framework's cost per step. The machine's load changes the figures, not the
ratios.

Variants: CPU with ``--threads`` (default 1 and 2; none with ``--threads``), and with
``--cuda`` the GPU in fp32, bf16 autocast and ``torch.compile`` (benchmarks/gpu.sh runs
those), each also as a multiple of the last CPU figure. The data stays on the device (no
file loader). Reference support: DeepSets encoders with sum pooling
and transformer encoders with cross-attention pooling (the baseline and transformer models).
``--model adversarial`` instead times its discriminator + main step with the control jets'
forward shared by both steps against a fresh forward per step (the step before the change).
Run by hand, e.g. ``python benchmarks/train_step.py --model transformer``; ``--smoke`` (a test
runs it) only checks that the script runs.
"""

import os
from dataclasses import replace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no busy-waiting threads

import argparse
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from _common import parse_args
from torch import nn

from hepsnake.config import contract, resolve, validate
from hepsnake.names import input_fields
from hepsnake.training.module import TaggerModule
from hepsnake.training.run import build_module

CONFIG = Path(__file__).resolve().parents[1] / "config"
SLOTS = {"tracks": 40, "clusters": 30}
MULTIPLICITY = {"tracks": 10, "clusters": 8}
Batch = dict[str, torch.Tensor]


def make_module(model: str) -> TaggerModule:
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    config |= {"samples": str(CONFIG / "samples.tsv"), "model_dir": str(CONFIG / "models")}
    part = contract(resolve(validate(config)), "train", model=model)
    norm = {
        coll: {v: {"mean": 0.0, "std": 1.0} for v in fields}
        for coll, fields in input_fields(part.inputs).items()
    }
    return build_module(part, norm, [1.0] * len(part.class_names))


def make_batch(module: TaggerModule, size: int, gen: torch.Generator) -> Batch:
    spec = module.spec
    batch: Batch = {}
    for coll, variables in spec.variables.items():
        if coll == "jets":
            batch[coll] = torch.rand(size, len(variables), generator=gen) + 0.5
            continue
        slots = SLOTS.get(coll, 40)
        counts = torch.poisson(torch.full((size,), float(MULTIPLICITY.get(coll, 10))), gen)
        counts = counts.clamp(1, slots)
        width = int(counts.max())  # the loader drops the columns no jet of the batch uses
        mask = torch.arange(width) < counts[:, None]
        values = torch.rand(size, width, len(variables), generator=gen) + 0.5
        batch[coll] = values * mask[..., None]
        batch[f"{coll}_mask"] = mask
    if spec.parameters:
        batch["params"] = torch.rand(size, len(spec.parameters), generator=gen)
    batch["label"] = torch.randint(0, len(module.hparams.class_names), (size,), generator=gen)
    batch["weight"] = torch.ones(size)
    return batch


def mlp(sizes: list[int], final_act: bool = False) -> nn.Sequential:
    """Linear layers with SiLU between them (and after the last with ``final_act``)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or final_act:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class RefAttention(nn.Module):
    """Pre-norm self-attention block plus dense block, as a plain transformer layer."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.dense = mlp([dim, 2 * dim, dim])

    def forward(self, x: torch.Tensor, keys: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        x = x + self.out(att.transpose(1, 2).reshape(b, n, d)) * m
        return (x + self.dense(self.norm2(x))) * m


class Reference(nn.Module):
    """Plain PyTorch with the shipped model's layers: per-collection init nets on
    [constituent, jet] variables, a DeepSets or transformer encoder, sum or cross-attention
    pooling, and a head on [pooled, jet variables]."""

    def __init__(self, module: TaggerModule) -> None:
        super().__init__()
        cfg, spec = module.hparams.model_cfg, module.spec
        kind, pool = cfg["encoder"]["type"], cfg["pooling"]["type"]
        if (kind, pool) not in (("deepsets", "sum"), ("transformer", "cross_attention")):
            raise SystemExit(f"no reference for encoder {kind!r} with pooling {pool!r}")
        if spec.parameters or cfg.get("fourier") or len(cfg.get("tasks", [])) > 1:
            raise SystemExit("no reference for parameters, Fourier features or extra tasks")
        self.kind = kind
        self.collections = spec.constituents
        dim, n_jet = cfg["dim"], len(spec.variables["jets"])
        hidden = cfg["init_nets"]["default"]["hidden"]
        self.init = nn.ModuleDict(
            {
                c: mlp([len(spec.variables[c]) + n_jet, *hidden, dim], final_act=True)
                for c in self.collections
            }
        )
        transforms = module.hparams.inputs.get("transforms", {})
        self.log1p = {  # columns taking log1p (the norm dict is unit: no affine part)
            c: [i for i, v in enumerate(vs) if transforms.get(c, {}).get(v) == "log1p"]
            for c, vs in spec.variables.items()
        }
        layers, heads = cfg["encoder"].get("layers", 2), cfg["encoder"].get("heads", 4)
        if kind == "deepsets":
            self.blocks = nn.ModuleList(mlp([2 * dim, dim, dim], True) for _ in range(layers))
        else:
            self.blocks = nn.ModuleList(RefAttention(dim, heads) for _ in range(layers))
            self.norm = nn.LayerNorm(dim)
            self.pool_heads = cfg["pooling"].get("heads", 4)
            self.token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.q, self.kv, self.out = (
                nn.Linear(dim, dim),
                nn.Linear(dim, 2 * dim),
                nn.Linear(dim, dim),
            )
        self.head = mlp([dim + n_jet, *cfg["head"]["hidden"], len(module.hparams.class_names)])
        n_classes = len(module.hparams.class_names)
        weights = module.hparams.class_weights or [1.0] * n_classes  # as the jet task's loss
        self.register_buffer("class_weights", torch.tensor(weights, dtype=torch.float32))

    def normalise(self, coll: str, x: torch.Tensor) -> torch.Tensor:
        cols = self.log1p[coll]
        if not cols:
            return x
        x = x.clone()
        x[..., cols] = x[..., cols].log1p()
        return x

    def forward(self, batch: Batch) -> torch.Tensor:
        jets = self.normalise("jets", batch["jets"])
        xs, ms = [], []
        for c in self.collections:
            x = self.normalise(c, batch[c])
            x = torch.cat([x, jets[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
            xs.append(self.init[c](x))
            ms.append(batch[f"{c}_mask"])
        mask = torch.cat(ms, dim=1)
        m = mask.unsqueeze(-1).to(jets.dtype)
        x = torch.cat(xs, dim=1) * m
        if self.kind == "deepsets":
            count = m.sum(1, keepdim=True).clamp_min(1)
            for block in self.blocks:
                context = (x.sum(1, keepdim=True) / count).expand_as(x)
                x = (x + block(torch.cat([x, context], dim=-1))) * m
            pooled = x.sum(1)
        else:
            keys = mask[:, None, None, :]
            for block in self.blocks:
                x = block(x, keys, m)
            x = self.norm(x) * m
            b, n, d = x.shape
            h = self.pool_heads
            q = self.q(self.token).expand(b, 1, d).view(b, 1, h, d // h).transpose(1, 2)
            k, v = self.kv(x).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
            pooled = self.out(att.transpose(1, 2).reshape(b, d))
        return self.head(torch.cat([pooled, jets], dim=-1))

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(
            self(batch), batch["label"], weight=self.class_weights, reduction="none"
        )
        w = batch["weight"]
        return {"loss": (ce * w).sum() / w.sum()}


class Stepper:
    """One model, its AdamW and its batches on ``device``: ``run(steps)`` times steps."""

    def __init__(
        self, model: nn.Module, batches: list[Batch], device: str, bf16: bool, compile_: str
    ) -> None:
        self.model = model.to(device)
        target = self.model.model if isinstance(self.model, TaggerModule) else self.model
        if compile_:
            target.compile(backend=compile_)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
        self.device = device
        self.autocast: Callable[[], Any] = (
            (lambda: torch.autocast(device, dtype=torch.bfloat16))
            if bf16
            else contextlib.nullcontext
        )
        self.i = 0
        self.run(3)  # warm-up (and compilation)

    def step(self) -> None:
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.optimiser.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.model.losses(batch)["loss"]
        loss.backward()
        self.optimiser.step()

    def run(self, steps: int) -> float:
        """Seconds of ``steps`` steps."""
        self.sync()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.sync()
        return time.perf_counter() - start

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def lightning_rate(
    model: str, batches: list[Batch], device: str, steps: int, reference: Stepper
) -> tuple[float, float]:
    """Jets/s of the shipped module's own ``training_step`` in ``Trainer.fit`` (after 3
    warm-up steps; batches handed over by a DataLoader as in training), and of the reference,
    one step of which runs after each Lightning step (outside its clock)."""
    import lightning as L
    from torch.utils.data import DataLoader

    class Clock(L.Callback):
        seconds, reference = 0.0, 0.0

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if args[-1] >= 3:
                self.seconds += time.perf_counter() - self.start
                self.reference += reference.run(1)

    torch.manual_seed(0)
    clock = Clock()
    data = [batches[i % len(batches)] for i in range(steps + 3)]
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(make_module(model), train_dataloaders=DataLoader(data, batch_size=None))
    jets = steps * len(batches[0]["label"])
    return jets / clock.seconds, jets / clock.reference


def compare(
    args: argparse.Namespace, batches: list[Batch], device: str, bf16: bool, compile_: str
) -> dict[str, float]:
    """Jets/s of the shipped module and the reference, their steps interleaved in ``--rounds``
    rounds of ``--steps`` steps each, so that a varying load hits both alike; ``compile_``: the
    ``torch.compile`` backend ("": none). In fp32 unless ``--no-lightning``, also the
    Lightning step against the reference."""
    torch.manual_seed(0)
    shipped = Stepper(make_module(args.model), batches, device, bf16, compile_)
    torch.manual_seed(0)
    reference = Stepper(Reference(shipped.model), batches, device, bf16, compile_)
    seconds = {"hepsnake": 0.0, "reference": 0.0}
    for _ in range(args.rounds * args.steps):
        seconds["hepsnake"] += shipped.run(1)
        seconds["reference"] += reference.run(1)
    jets = args.rounds * args.steps * len(batches[0]["label"])
    rates = {k: jets / v for k, v in seconds.items()}
    if not (args.no_lightning or bf16 or compile_):
        steps = args.rounds * args.steps
        rates["lightning"], rates["lightning_ref"] = lightning_rate(
            args.model, batches, device, steps, reference
        )
    return rates


def adversarial_rates(args: argparse.Namespace, batches: list[Batch]) -> dict[str, float]:
    """Jets/s of the adversarial model's discriminator + main step with one control forward
    shared by both (as trained) and with a fresh forward per step (as before), interleaved;
    the control batches are the same batches with ``is_data`` and ``pt`` added."""
    modules = {}
    for name in ("shared", "separate"):
        torch.manual_seed(0)
        module = make_module("adversarial")
        # no Trainer here: no schedule, no Lightning gradient clipping (both per step alike)
        training = replace(module.trained.training_cfg, schedule="none", gradient_clip=None)
        module.trained = replace(module.trained, training_cfg=training)
        main_opt, disc_opt = module.configure_optimizers()
        module.optimizers = lambda o=(main_opt, disc_opt): o
        module.lr_schedulers = lambda: None
        module.manual_backward = lambda loss: loss.backward()
        modules[name] = module
    gen = torch.Generator().manual_seed(2)
    controls = [
        b | {"is_data": torch.rand(len(b["label"]), generator=gen) < 0.5, "pt": b["jets"][:, 0]}
        for b in batches
    ]
    k = modules["shared"].adv.k_steps

    def shared(module: Any, batch: Batch, control: Batch) -> None:
        probs = module.control_probs(control)
        for _ in range(k):
            module.discriminator_step(control, probs)
        module.main_step(batch, control, probs)

    def separate(module: Any, batch: Batch, control: Batch) -> None:
        for _ in range(k):
            with torch.no_grad():
                probs = module.control_probs(control)
            module.discriminator_step(control, probs)
        module.main_step(batch, control, module.control_probs(control))

    steps = {"shared": shared, "separate": separate}
    seconds = dict.fromkeys(steps, 0.0)
    for i in range(3 + args.rounds * args.steps):
        for name, step in steps.items():
            start = time.perf_counter()
            step(modules[name], batches[i % len(batches)], controls[(i + 1) % len(controls)])
            if i >= 3:
                seconds[name] += time.perf_counter() - start
    jets = args.rounds * args.steps * len(batches[0]["label"])
    return {name: jets / s for name, s in seconds.items()}


def report(label: str, rates: dict[str, float], cpu: float | None = None) -> None:
    ratio = rates["hepsnake"] / rates["reference"]
    line = (
        f"  {label:<24} hepsnake {rates['hepsnake']:>9,.0f}  reference "
        f"{rates['reference']:>9,.0f} jets/s  ratio {ratio:.2f}"
    )
    if "lightning" in rates:
        share = rates["lightning"] / rates["lightning_ref"]
        line += f"  lightning {rates['lightning']:>9,.0f} ({share:.2f})"
    if cpu:
        line += f"  {rates['hepsnake'] / cpu:.1f}x cpu"
    print(line, flush=True)


CUDA_VARIANTS = {  # name: (bf16 autocast, torch.compile)
    "fp32": (False, False),
    "bf16": (True, False),
    "compile": (False, True),
    "compile-bf16": (True, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="baseline", help="config/models/<name>.yaml")
    parser.add_argument("--batch", type=int, default=1000, help="jets per batch")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --steps steps")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="CPU threads")
    parser.add_argument(
        "--cuda",
        nargs="*",
        choices=sorted(CUDA_VARIANTS),
        default=[],
        help="GPU variants, each also given as a multiple of the last CPU figure",
    )
    parser.add_argument(
        "--cuda-device",
        default="cuda",
        choices=["cuda", "cpu"],
        help="where the --cuda variants run: cpu runs the same code on the CPU (gpu.sh --dry-run)",
    )
    parser.add_argument(
        "--compile-backend",
        default="inductor",
        help="torch.compile backend of the compile variants (eager: tracing only, for a dry run)",
    )
    parser.add_argument("--no-lightning", action="store_true", help="skip the Trainer.fit runs")
    args = parse_args(parser, {"batch": 50, "steps": 1, "rounds": 1, "threads": [1]})
    if args.model == "adversarial":
        adversarial(args)
        return
    device = args.cuda_device
    if args.cuda and device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_step.py: --cuda given but torch sees no CUDA device")
    gen = torch.Generator().manual_seed(1)
    module = make_module(args.model)
    batches = [make_batch(module, args.batch, gen) for _ in range(4)]
    n_params = sum(p.numel() for p in module.parameters())
    n_ref = sum(p.numel() for p in Reference(module).parameters())
    print(
        f"model {args.model}: {n_params:,d} parameters (reference {n_ref:,d}), batch {args.batch};"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    cpu = None
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = compare(args, batches, "cpu", False, "")
        report(f"cpu {threads} thread(s)", rates)
        cpu = rates["hepsnake"]
    if args.cuda:
        name = torch.cuda.get_device_name() if device == "cuda" else "none (the CPU stands in)"
        print(f"  gpu: {name}")
    for name in args.cuda:
        bf16, compile_ = CUDA_VARIANTS[name]
        rates = compare(args, batches, device, bf16, args.compile_backend if compile_ else "")
        report(f"{device} {name}", rates, cpu)


def adversarial(args: argparse.Namespace) -> None:
    """``--model adversarial``: the shared control forward against a forward per step."""
    gen = torch.Generator().manual_seed(1)
    batches = [make_batch(make_module("adversarial"), args.batch, gen) for _ in range(4)]
    print(
        f"model adversarial: discriminator + main step, batch {args.batch} (+ control);"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = adversarial_rates(args, batches)
        print(
            f"  cpu {threads} thread(s): shared control forward {rates['shared']:>8,.0f} jets/s,"
            f" one per step {rates['separate']:>8,.0f} jets/s:"
            f" {rates['shared'] / rates['separate']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
