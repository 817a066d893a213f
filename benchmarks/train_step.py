"""Training throughput (jets/s) of one training step on synthetic batches, CPU and GPU.

Builds the model with :func:`hepsnake.training.run.build_module` from config/config.yaml and
config/models/<--model>.yaml with a unit norm dict (over the fields models read), then times
forward + backward + AdamW step on batches of ``--batch`` jets (40 tracks, 30
clusters, ~10 / ~8 real, packed first): on CPU with 1 and 2 torch threads and, when CUDA is
available, on GPU in fp32, bf16 autocast, and ``torch.compile`` fp32 and bf16. The data
stays on the device (no loader). Run by hand, e.g.
``python benchmarks/train_step.py --model transformer``. Not a test.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no busy-waiting threads

import argparse
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from hepsnake.config import load_model
from hepsnake.names import input_fields
from hepsnake.training.run import build_module

CONFIG = Path(__file__).resolve().parents[1] / "config"
SLOTS = {"tracks": 40, "clusters": 30}
MULTIPLICITY = {"tracks": 10, "clusters": 8}


def make_module(model: str) -> Any:
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    config["model_dir"] = str(CONFIG / "models")
    config["model"] = load_model(config, model)
    norm = {
        coll: {v: {"mean": 0.0, "std": 1.0} for v in fields}
        for coll, fields in input_fields(config["inputs"]).items()
    }
    return build_module(config, norm, [1.0] * len(config["class_names"]))


def make_batch(module: Any, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    spec = module.spec
    batch: dict[str, torch.Tensor] = {}
    for coll, variables in spec.variables.items():
        if coll == "jets":
            batch[coll] = torch.rand(size, len(variables), generator=gen) + 0.5
            continue
        slots = SLOTS.get(coll, 40)
        counts = torch.poisson(torch.full((size,), float(MULTIPLICITY.get(coll, 10))), gen)
        mask = torch.arange(slots) < counts.clamp(1, slots)[:, None]
        values = torch.rand(size, slots, len(variables), generator=gen) + 0.5
        batch[coll] = values * mask[..., None]
        batch[f"{coll}_mask"] = mask
    if spec.parameters:
        batch["params"] = torch.rand(size, len(spec.parameters), generator=gen)
    batch["label"] = torch.randint(0, len(module.hparams.class_names), (size,), generator=gen)
    batch["weight"] = torch.ones(size)
    aux = module.hparams.model_cfg.get("aux")
    if aux:
        batch[aux["target"]] = torch.rand(size, generator=gen)
    return batch


def throughput(
    model: str,
    batches: list[dict[str, torch.Tensor]],
    device: str,
    bf16: bool = False,
    compile_: bool = False,
    steps: int = 20,
) -> float:
    """Jets/s of forward + backward + AdamW over ``steps`` steps, after warm-up steps."""
    torch.manual_seed(0)
    module = make_module(model).to(device)
    if compile_:
        module.model.compile()
    optimiser = torch.optim.AdamW(module.parameters(), lr=1e-3)
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    autocast: Callable[[], Any] = (
        (lambda: torch.autocast(device, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )

    def step(batch: dict[str, torch.Tensor]) -> None:
        optimiser.zero_grad(set_to_none=True)
        with autocast():
            loss = module.losses(batch)["loss"]
        loss.backward()
        optimiser.step()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for batch in batches[:3]:  # warm-up (and compilation)
        step(batch)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    sync()
    return steps * len(batches[0]["label"]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="baseline", help="config/models/<name>.yaml")
    parser.add_argument("--batch", type=int, default=1000, help="jets per batch")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(1)
    module = make_module(args.model)
    batches = [make_batch(module, args.batch, gen) for _ in range(4)]
    n_params = sum(p.numel() for p in module.parameters())
    print(f"model {args.model}: {n_params:,d} parameters, batch {args.batch}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rate = throughput(args.model, batches, "cpu", steps=args.steps)
        print(f"  cpu  {threads} thread(s)       {rate:>12,.0f} jets/s")
    if not torch.cuda.is_available():
        print("  (no CUDA device: GPU variants skipped)")
        return
    print(f"  gpu: {torch.cuda.get_device_name()}")
    for label, bf16, compile_ in (
        ("fp32", False, False),
        ("bf16 autocast", True, False),
        ("compile fp32", False, True),
        ("compile bf16", True, True),
    ):
        rate = throughput(args.model, batches, "cuda", bf16, compile_, max(args.steps, 50))
        print(f"  gpu  {label:<18} {rate:>12,.0f} jets/s")


if __name__ == "__main__":
    main()
