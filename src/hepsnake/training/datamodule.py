"""Lightning glue around :class:`hepsnake.data.loader.H5Batches` (whole batches, no workers)."""

import itertools
from collections.abc import Iterator

import lightning as L
from torch.utils.data import DataLoader, IterableDataset

from hepsnake.data.loader import Batch, H5Batches
from hepsnake.data.parameters import WithParameters
from hepsnake.errors import HepsnakeError

Batches = H5Batches | WithParameters


def set_rank(batches: Batches, rank: int, world_size: int) -> None:
    """Give ``batches`` its DDP slice."""
    if isinstance(batches, WithParameters):
        batches.set_rank(rank, world_size)
    else:
        batches.rank, batches.world_size = rank, world_size


class BatchDataset(IterableDataset):
    """Yields ready batches; the DataLoader adds nothing (batch_size=None, no workers)."""

    def __init__(self, batches: "Batches") -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class H5DataModule(L.LightningDataModule):
    """Train and validation batches from prepared files; DDP ranks take disjoint slices."""

    def __init__(
        self, train: Batches, val: Batches, control: dict[str, Batches] | None = None
    ) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.control = control or {}
        self.cycle: Iterator[Batch] | None = None
        self.cycle_epoch = -1

    def setup(self, stage: str) -> None:
        for batches in (self.train, self.val, *self.control.values()):
            set_rank(batches, self.trainer.global_rank, self.trainer.world_size)

    def control_batch(self) -> Batch:
        """The next control-region training batch of the current epoch."""
        epoch = self.trainer.current_epoch
        if self.cycle is None or self.cycle_epoch != epoch:
            self.cycle, self.cycle_epoch = self.control_cycle(epoch), epoch
        batch = next(self.cycle)
        return {k: v.to(self.trainer.lightning_module.device) for k, v in batch.items()}

    def control_cycle(self, epoch: int) -> Iterator[Batch]:
        """Control batches for main epoch ``epoch``: control passes ``epoch·p``, ``epoch·p + 1``,
        … (``p`` passes cover one main epoch), each shuffled by (seed, pass).

        A function of (seed, epoch) only, so a run resumed at an epoch boundary draws the
        batches the uninterrupted run drew.
        """
        control = self.control["train"]
        if not len(control):
            raise HepsnakeError("control train split", "no control batches")
        passes = -(-len(self.train) // len(control))
        for n in itertools.count(epoch * passes):
            control.set_epoch(n)
            yield from control

    def train_dataloader(self) -> DataLoader:
        self.train.set_epoch(self.trainer.current_epoch)
        return DataLoader(BatchDataset(self.train), batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(BatchDataset(self.val), batch_size=None, num_workers=0)
