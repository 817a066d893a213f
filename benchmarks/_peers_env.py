"""The peers' virtual environments, built once and cached outside the repository.

Salt (salt-ml 0.13.0) and UPP (umami-preprocessing) pin versions hepsnake does not use (Salt
wants torch 2.12 and lightning 2.6.1; puma-hep and UPP want numpy < 2.4), so each gets its own
venv under ``$HEPSNAKE_PEERS_CACHE`` (default ``~/.cache/hepsnake-peers``). Salt is installed
with ``--no-deps`` and its requirements by hand, with torch held at the CPU wheel 2.13.0 by a
constraints file so that pip never pulls a CUDA build. A venv counts as built once its marker
file holds the specs it was built from; a failed build leaves no marker and says why.

Run ``python benchmarks/_peers_env.py`` to build both (minutes; idempotent).
"""

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("HEPSNAKE_PEERS_CACHE", Path.home() / ".cache" / "hepsnake-peers"))
TORCH = "torch==2.13.0"  # the CPU wheel on this machine's disk; Salt asks for 2.12.0


@dataclass(frozen=True)
class Peer:
    """A peer's venv: its requirements (installed with dependencies, torch held), then the
    package itself installed with ``--no-deps``, and the module that proves the import."""

    name: str
    requirements: tuple[str, ...]
    package: str
    module: str


SALT = Peer(
    name="salt",
    requirements=(
        TORCH,
        "lightning==2.6.1",
        "torchmetrics==1.8.2",
        "atlas-ftag-tools==0.3.3",
        "umami-preprocessing==0.3.1",
        "puma-hep==0.5.3",
        "onnx==1.21.0",
        "onnxruntime==1.25.0",
        "onnxscript",
        "comet_ml>=3.49.7",
        "filelock>=3.12",
        "h5py>=3.14.0",
        "jsonargparse[argcomplete,signatures]>=4.32.0",
        "lion-pytorch>=0.2.2",
        "numpy>=2.2.6",
        "rich>=14.1.0",
        "scipy>=1.15.3",
        "tqdm>=4.66.1",
    ),
    package="salt-ml==0.13.0",
    module="salt",
)
UPP = Peer(
    name="upp",
    requirements=("umami-preprocessing==0.3.3",),
    package="umami-preprocessing==0.3.3",
    module="upp",
)
PEERS = {peer.name: peer for peer in (SALT, UPP)}


def venv_dir(peer: Peer) -> Path:
    return CACHE / peer.name


def python(peer: Peer) -> Path:
    """The venv's interpreter."""
    return venv_dir(peer) / "bin" / "python"


def marker(peer: Peer) -> Path:
    return venv_dir(peer) / "hepsnake-peer.txt"


def specs(peer: Peer) -> str:
    return "\n".join([*peer.requirements, peer.package]) + "\n"


def is_built(peer: Peer) -> bool:
    """Whether the venv was built, completely, from today's specs."""
    return marker(peer).is_file() and marker(peer).read_text() == specs(peer)


def build(peer: Peer, log: Path | None = None) -> Path:
    """Build ``peer``'s venv unless it is built; its interpreter. Raises RuntimeError naming
    the step and the log's last lines when pip fails."""
    if is_built(peer):
        return python(peer)
    root = venv_dir(peer)
    root.parent.mkdir(parents=True, exist_ok=True)
    log = log or root.parent / f"{peer.name}-build.log"
    marker(peer).unlink(missing_ok=True)
    constraints = root.parent / "constraints.txt"
    constraints.write_text(f"{TORCH}\n")
    pip = [str(python(peer)), "-m", "pip", "install", "-q", "-c", str(constraints)]
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(root)],
        [*pip, *peer.requirements],
        [*pip, "--no-deps", peer.package],
        [str(python(peer)), "-c", f"import {peer.module}"],
    ]
    with log.open("w") as out:
        for step in steps:
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                tail = log.read_text().splitlines()[-5:]
                raise RuntimeError(f"{peer.name} venv: `{' '.join(step[:6])} …` failed: {tail}")
    marker(peer).write_text(specs(peer))
    return python(peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peers", nargs="*", help=f"of {sorted(PEERS)} (default: all)")
    names = parser.parse_args().peers or list(PEERS)
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer {unknown[0]!r} (known: {sorted(PEERS)})")
    for name in names:
        print(f"{name}: {build(PEERS[name])}", flush=True)


if __name__ == "__main__":
    main()
