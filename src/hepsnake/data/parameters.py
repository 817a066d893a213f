"""Physics parameters (e.g. the LLP mass) for parameterised training and evaluation.

Signal jets carry their true value; background jets (NaN) get a value drawn from the
training values with the configured probabilities (uniform if none), fresh every epoch.
At test time every jet gets the evaluated value.
"""

from collections.abc import Iterator

import numpy as np
import torch

from hepsnake.config.contracts import Parameters
from hepsnake.data.loader import Batch, H5Batches


class ParameterSampler:
    """Draws background parameter values following ``parameters.train`` and ``prob``."""

    def __init__(self, parameters: Parameters) -> None:
        self.names = list(parameters.names)
        self.values = [np.asarray(parameters.train[n], dtype=np.float32) for n in self.names]
        prob = parameters.prob or {}
        self.probs = []
        for name, values in zip(self.names, self.values, strict=True):
            p = np.asarray(prob.get(name, np.ones(len(values))), dtype=np.float64)
            self.probs.append(p / p.sum())

    def fill(self, params: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Replace the NaN entries (background jets) by drawn values."""
        out = params.clone()
        for i, (values, probs) in enumerate(zip(self.values, self.probs, strict=True)):
            missing = torch.isnan(out[:, i])
            n = int(missing.sum())
            if n:
                out[missing, i] = torch.from_numpy(rng.choice(values, size=n, p=probs))
        return out


class WithParameters:
    """Wraps :class:`H5Batches`: fills background parameters, or sets every jet to ``fixed``."""

    def __init__(
        self,
        batches: H5Batches,
        sampler: ParameterSampler,
        seed: int,
        fixed: dict[str, float] | None = None,
    ) -> None:
        self.batches, self.sampler, self.seed, self.fixed = batches, sampler, seed, fixed

    @property
    def epoch(self) -> int:
        return self.batches.epoch

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def set_rank(self, rank: int, world_size: int) -> None:
        self.batches.rank, self.batches.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, self.batches.epoch, self.batches.rank, 17])
        for batch in self.batches:
            if self.fixed is not None:
                values = [self.fixed[n] for n in self.sampler.names]
                batch["params"] = (
                    torch.tensor(values, dtype=torch.float32)
                    .expand(len(batch["label"]), -1)
                    .contiguous()
                )
            else:
                batch["params"] = self.sampler.fill(batch["params"], rng)
            yield batch
