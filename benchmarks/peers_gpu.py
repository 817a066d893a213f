"""A GN2-size training step on CUDA, hepsnake's tagger and Salt's SaltModel side by side:
fp32, bf16 autocast, torch.compile (fp32 and bf16); jets/s and model FLOPs utilisation.

    python benchmarks/peers_gpu.py [--dry-run] [--batch 1000] [--steps 20] [--peak-tflops F]

Both models: the toy's inputs (5 jet variables joined to 40 tracks and 30 clusters of 5
variables each, random values, ~60 % of the slots real), init nets ``[dim]`` wide, a
``layers``-layer transformer of width ``dim`` with ``heads`` heads and gated dense blocks,
global attention pooling and a ``[128, 64, 32]`` jet head, AdamW; one step = forward,
backward, optimiser step. Salt runs in its own venv (``benchmarks/_peers_env.py``; on a
device machine without it the Salt column is skipped with one line). The model FLOPs of a step
are counted by ``torch.utils.flop_counter`` (fp32, eager); utilisation is FLOPs/s over the
device's dense peak for the step's precision (``--peak-tflops`` overrides the table).
``--dry-run``: the same on the CPU, tiny batch, compile with the eager backend; its figures
measure nothing (``benchmarks/gpu.sh --dry-run`` runs it).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
GN2 = {"dim": 256, "layers": 4, "heads": 8, "head": [128, 64, 32]}
SLOTS = {"tracks": 40, "clusters": 30}
N_VARS = 5  # per jet and per constituent, as the toy
CLASSES = ["qcd", "sig", "bib"]
MODES = ("fp32", "bf16", "compile", "compile-bf16")
# dense peak TFLOP/s (no sparsity) per device family: fp32 without TF32, bf16 tensor cores
PEAKS = {
    "H200": {"fp32": 67.0, "bf16": 989.0},
    "H100": {"fp32": 67.0, "bf16": 989.0},
    "A100": {"fp32": 19.5, "bf16": 312.0},
}


def batch_tensors(n: int, device: str, seed: int = 0) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {"jets": torch.randn(n, N_VARS, generator=gen)}
    for c, slots in SLOTS.items():
        out[c] = torch.randn(n, slots, N_VARS, generator=gen)
        counts = torch.randint(0, slots + 1, (n, 1), generator=gen)
        out[f"{c}_mask"] = torch.arange(slots) < (0.6 * counts + 0.4 * slots).long()
    out["label"] = torch.randint(0, len(CLASSES), (n,), generator=gen)
    return {k: v.to(device) for k, v in out.items()}


def hepsnake_step(batch: dict[str, Any]) -> tuple[Any, Any]:
    """hepsnake's tagger (GN2 size) and a function computing its loss on ``batch``."""
    import torch.nn.functional as F

    from hepsnake.config import build
    from hepsnake.config.contracts import ModelSpec, inputs
    from hepsnake.config.resolved import validated_model
    from hepsnake.data.loader import InputSpec
    from hepsnake.models.tagger import Tagger
    from hepsnake.models.tasks.base import Context

    names = [f"v{i}" for i in range(N_VARS)]
    variables = {"jets": names, **dict.fromkeys(SLOTS, names)}
    spec = InputSpec.from_config(inputs({"variables": variables, "num_inputs": SLOTS}))
    norm = {c: {v: {"mean": 0.0, "std": 1.0} for v in vs} for c, vs in variables.items()}
    cfg = {
        "dim": GN2["dim"],
        "init_nets": {"default": {"hidden": [GN2["dim"]]}},
        "encoder": {
            "type": "transformer",
            "layers": GN2["layers"],
            "heads": GN2["heads"],
            "gated": True,
        },
        "pooling": {"type": "attention"},
        "head": {"hidden": GN2["head"]},
    }
    block = validated_model({"training_overrides": {}}, "gn2", {"model": cfg})["model"]
    model = Tagger(build(ModelSpec, block), spec, norm, Context(CLASSES))

    def loss(m: Any) -> Any:
        return F.cross_entropy(m(batch)["logits"].float(), batch["label"])

    return model, loss


def salt_step(batch: dict[str, Any]) -> tuple[Any, Any]:
    """Salt's SaltModel (GN2 size) and a function computing its loss on ``batch``."""
    from salt.models import (
        ClassificationTask,
        GlobalAttentionPooling,
        SaltModel,
        TransformerV2,
    )
    from torch import nn

    names = [f"v{i}" for i in range(N_VARS)]
    variables = {"jets": names, **dict.fromkeys(SLOTS, names)}
    dim = GN2["dim"]
    init = {"output_size": dim, "hidden_layers": [dim], "activation": "SiLU"}
    task = ClassificationTask(
        name="jets_classification",
        input_name="jets",
        label="flavour_label",
        class_names=CLASSES,
        loss=nn.CrossEntropyLoss(),
        dense_config={
            "input_size": dim,
            "output_size": len(CLASSES),
            "hidden_layers": GN2["head"],
            "activation": "SiLU",
        },
    )
    task.global_object = "jets"
    model = SaltModel(
        init_nets=[
            {
                "input_name": c,
                "dense_config": dict(init),
                "variables": variables,
                "global_object": "jets",
            }
            for c in SLOTS
        ],
        tasks=nn.ModuleList([task]),
        encoder=TransformerV2(
            num_layers=GN2["layers"],
            embed_dim=dim,
            attn_type="torch-math",
            num_registers=1,
            attn_kwargs={"num_heads": GN2["heads"]},
            dense_kwargs={"activation": "SiLU", "gated": True},
        ),
        pool_net=GlobalAttentionPooling(dim),
    )
    inputs = {"jets": batch["jets"], **{c: batch[c] for c in SLOTS}}
    labels = {"jets": {"flavour_label": batch["label"]}}

    def loss(m: Any) -> Any:
        masks = {c: ~batch[f"{c}_mask"] for c in SLOTS}
        _, losses = m(dict(inputs), masks, labels)
        return sum(losses.values())

    return model, loss


def time_modes(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """(Child) jets/s per mode of ``side``'s step, and its FLOPs per step."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = "cpu" if args.dry_run else "cuda"
    torch.manual_seed(0)
    batch = batch_tensors(args.batch, device)
    model, loss_fn = (hepsnake_step if side == "hepsnake" else salt_step)(batch)
    model = model.to(device).train()
    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn(model).backward()
    out: dict[str, Any] = {"flops_per_step": counter.get_total_flops(), "modes": {}}
    backend = "eager" if args.dry_run else "inductor"
    for mode in MODES:
        net = torch.compile(model, backend=backend) if mode.startswith("compile") else model
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
        dtype = torch.bfloat16 if mode.endswith("bf16") else None

        def step(net: Any = net, optimiser: Any = optimiser, dtype: Any = dtype) -> None:
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = loss_fn(net)
            loss.backward()
            optimiser.step()

        try:
            for _ in range(args.warmup):
                step()
            if device == "cuda":
                torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(args.steps):
                step()
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - began) / args.steps
            out["modes"][mode] = {"jets_per_s": args.batch / seconds, "step_s": seconds}
        except Exception as error:  # a mode one side cannot run is reported, not fatal
            out["modes"][mode] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    out["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)"
    return out


def peak(device: str, mode: str, override: float | None) -> float | None:
    """Dense peak FLOP/s for ``mode``'s precision on ``device`` (None when unknown)."""
    if override:
        return override * 1e12
    precision = "bf16" if mode.endswith("bf16") else "fp32"
    family = next((PEAKS[k] for k in PEAKS if k in device), None)
    return family[precision] * 1e12 if family else None


def salt_python() -> Path | None:
    import _peers_env

    if _peers_env.is_built(_peers_env.SALT):
        return _peers_env.python(_peers_env.SALT)
    return None


def child_cmd(python: Path | str, side: str, args: argparse.Namespace) -> list[str]:
    cmd = [str(python), __file__, "--child", side, "--batch", str(args.batch)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    return cmd + (["--dry-run"] if args.dry_run else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny: checks it runs")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, help="the device's peak (default: table)")
    parser.add_argument("--child", choices=["hepsnake", "salt"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dry_run:
        args.batch, args.steps, args.warmup = min(args.batch, 8), 1, 1
    if args.child:
        print(json.dumps(time_modes(args.child, args)))
        return
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            sys.exit("peers_gpu.py: no CUDA device (use --dry-run on the CPU)")
    sides = {"hepsnake": sys.executable, "salt": salt_python()}
    results = {}
    for side, python in sides.items():
        if python is None:
            print(
                f"  {side}: skipped: no Salt venv (python benchmarks/_peers_env.py salt builds it)"
            )
            continue
        proc = subprocess.run(child_cmd(python, side, args), capture_output=True, text=True)
        if proc.returncode:
            print(f"  {side}: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not results:
        sys.exit("peers_gpu.py: no side ran")
    device = next(iter(results.values()))["device"]
    print(f"  GN2 size {GN2}, batch {args.batch}, {device}")
    for side, r in results.items():
        print(f"  {side}: {r['flops_per_step'] / args.batch / 1e6:,.1f} MFLOP per jet and step")
    for mode in MODES:
        cells = []
        for side, r in results.items():
            m = r["modes"][mode]
            if "error" in m:
                cells.append(f"{side} error ({m['error']})")
                continue
            p = peak(device, mode, args.peak_tflops)
            mfu = r["flops_per_step"] / m["step_s"] / p if p else None
            util = f"MFU {mfu:.1%}" if mfu is not None else "MFU n/a"
            cells.append(f"{side} {m['jets_per_s']:>10,.0f} jets/s ({util})")
        ratio = ""
        if all("jets_per_s" in results[s]["modes"][mode] for s in results) and len(results) == 2:
            h, s = (results[k]["modes"][mode]["jets_per_s"] for k in ("hepsnake", "salt"))
            ratio = f"  hepsnake / Salt {h / s:.2f}x"
        print(f"  {mode:<13} " + "  ".join(cells) + ratio)


if __name__ == "__main__":
    main()
