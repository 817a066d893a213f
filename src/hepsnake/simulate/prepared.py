"""The toy's three classes simulated, converted, split and normalised under one folder in one
call: the prepared sample tests and benchmarks train on without running Snakemake."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hepsnake.config import Resolved, contract, resolve, validate
from hepsnake.convert.convert import convert
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.toy import simulate, write_root

# toy signal masses: trained on, and all (40 is never trained on)
MASS_GRID = {"train_masses": [5, 16, 55], "all_masses": [5, 16, 40, 55]}
# (sample name, process, signal mass): QCD, BIB and a signal at mS 16
TOY_SAMPLES = (("qcd", "qcd", None), ("bib", "bib", None), ("sig", "sig", 16.0))


def convert_samples(resolved: Resolved, root: Path) -> None:
    """Convert every sample of a resolved config to ``root/<name>.h5`` (+ ``.json``)."""
    for name in resolved.roles("train", "test", "control"):
        c = contract(resolved, "convert", sample=name)
        convert(c, root / f"{name}.h5", root / f"{name}.json", show_progress=False)


def prepared_toy(
    base: dict[str, Any], root: Path, jets: Mapping[str, int], seed: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """:data:`TOY_SAMPLES` with ``jets[name]`` jets each, simulated with ``seed`` as samples
    of the config it completes from ``base`` (an unvalidated config whose samples they
    replace), converted, split and normalised under ``root`` (``norm.yaml``, ``class.yaml``).

    Returns the validated config and the train/val/test paths.
    """
    samples = []
    for name, process, mass in TOY_SAMPLES:
        branches = simulate(name, process, jets[name], seed, mass=mass, **MASS_GRID)
        write_root(branches, root / f"{name}.root")
        samples.append(
            {
                "name": name,
                "files": [str(root / f"{name}.root")],
                "reader": "toy",
                "label": process,
                "params": {"mS": mass} if mass else {},
            }
        )
    config = validate(base | {"samples": samples})
    resolved = resolve(config)
    convert_samples(resolved, root)
    outputs = {s: str(root / f"{s}.h5") for s in SPLITS}
    inputs = [str(root / f"{name}.h5") for name, _, _ in TOY_SAMPLES]
    split(contract(resolved, "split"), inputs, outputs, str(root / "summary.json"))
    norm = contract(resolved, "norm")
    norm_stats(norm, outputs["train"], str(root / "norm.yaml"), str(root / "class.yaml"))
    return config, outputs
