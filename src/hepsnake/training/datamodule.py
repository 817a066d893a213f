"""Lightning glue around :class:`hepsnake.data.loader.H5Batches` (whole batches, no workers)."""

from collections.abc import Iterator

import lightning as L
from torch.utils.data import DataLoader, IterableDataset

from hepsnake.data.loader import Batch, H5Batches
from hepsnake.data.parameters import WithParameters

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

    def setup(self, stage: str) -> None:
        for batches in (self.train, self.val, *self.control.values()):
            set_rank(batches, self.trainer.global_rank, self.trainer.world_size)

    def control_batch(self) -> Batch:
        """The next control-region training batch, cycling over epochs of the control file."""
        if self.cycle is None:
            self.cycle = self.cycle_control()
        batch = next(self.cycle)
        return {k: v.to(self.trainer.lightning_module.device) for k, v in batch.items()}

    def cycle_control(self) -> Iterator[Batch]:
        epoch = 0
        while True:
            self.control["train"].set_epoch(epoch)
            yield from self.control["train"]
            epoch += 1

    def train_dataloader(self) -> DataLoader:
        self.train.set_epoch(self.trainer.current_epoch)
        return DataLoader(BatchDataset(self.train), batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(BatchDataset(self.val), batch_size=None, num_workers=0)
