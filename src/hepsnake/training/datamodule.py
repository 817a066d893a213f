"""Lightning glue around :class:`hepsnake.data.loader.H5Batches` (whole batches, no workers)."""

from collections.abc import Iterator

import lightning as L
from torch.utils.data import DataLoader, IterableDataset

from hepsnake.data.loader import Batch, H5Batches


class BatchDataset(IterableDataset):
    """Yields ready batches; the DataLoader adds nothing (batch_size=None, no workers)."""

    def __init__(self, batches: H5Batches) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class H5DataModule(L.LightningDataModule):
    """Train and validation batches from prepared files; DDP ranks take disjoint slices."""

    def __init__(self, train: H5Batches, val: H5Batches) -> None:
        super().__init__()
        self.train, self.val = train, val

    def setup(self, stage: str) -> None:
        for batches in (self.train, self.val):
            batches.rank, batches.world_size = self.trainer.global_rank, self.trainer.world_size

    def train_dataloader(self) -> DataLoader:
        self.train.set_epoch(self.trainer.current_epoch)
        return DataLoader(BatchDataset(self.train), batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(BatchDataset(self.val), batch_size=None, num_workers=0)
