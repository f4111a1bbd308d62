"""Sampler for ADSH's rounds: a fresh random subset every few epochs."""
from typing import Iterator, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmqueryopt.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class RoundSampler(Sampler):
    """Serve ``num_samples`` images drawn anew each round, for several epochs.

    Round ``r`` covers epochs ``r*E .. r*E + E - 1`` (E = ``epochs_per_round``)
    and uses :meth:`round_indices` ``(r)``, drawn without replacement from a
    generator seeded by ``seed + r``, so every rank and every resumed run
    draws the same subset. Under DDP the subset is split once per round
    (rank ``i`` takes positions ``i, i + W, ...``), so each image of the round
    is seen by exactly one rank; each epoch shuffles within the shard.

    When the world size does not divide ``num_samples`` the first ranks take
    one image more and every other rank repeats one image of its own shard,
    so that all ranks run the same number of iterations (DDP's collectives
    must pair up) while no sampled image is dropped. The copy only rewrites
    its own rank's row of U, so the ranks' rows stay disjoint.

    Args:
        dataset (Sized): The training set (the ADSH database).
        num_samples (int, optional): Images per round, at least the world
            size and at most ``len(dataset)``. None takes them all.
        epochs_per_round (int): Epochs over each round's subset.
        shuffle (bool): Shuffle the shard each epoch. Defaults to True.
        seed (int, optional): Shared seed; None syncs a random one.
    """

    def __init__(self,
                 dataset: Sized,
                 epochs_per_round: int,
                 num_samples: Optional[int] = None,
                 shuffle: bool = True,
                 seed: Optional[int] = None):
        num_database = len(dataset)
        if num_samples is None:
            num_samples = num_database
        if not 0 < num_samples <= num_database:
            raise ValueError(
                f'RoundSampler num_samples={num_samples} must be in [1, '
                f'{num_database}] (the training set size)')
        if epochs_per_round < 1:
            raise ValueError(
                f'epochs_per_round must be >= 1, got {epochs_per_round}')
        self.num_database = num_database
        self.num_samples = num_samples
        self.epochs_per_round = epochs_per_round
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.rank, self.world_size = get_dist_info()
        if num_samples < self.world_size:
            raise ValueError(
                f'RoundSampler num_samples={num_samples} is smaller than the '
                f'world size {self.world_size}: a rank would have no image '
                f'of its own to train on')
        self.epoch = 0

    def round_indices(self, round_idx: int) -> torch.Tensor:
        """The database rows sampled in round ``round_idx``, (num_samples,)."""
        generator = torch.Generator().manual_seed(self.seed + round_idx)
        return torch.randperm(
            self.num_database, generator=generator)[:self.num_samples]

    def set_epoch(self, epoch: int) -> None:
        """Called by MMEngine's ``DistSamplerSeedHook`` before each epoch."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        shard = self.round_indices(
            self.epoch // self.epochs_per_round)[self.rank::self.world_size]
        if len(shard) < len(self):
            shard = torch.cat([shard, shard[:1]])
        if self.shuffle:
            # Seeded by epoch so a resumed run replays the same order.
            generator = torch.Generator().manual_seed(
                self.seed + 1_000_003 * (self.epoch + 1))
            shard = shard[torch.randperm(len(shard), generator=generator)]
        return iter(shard.tolist())

    def __len__(self) -> int:
        """The same on every rank: ``ceil(num_samples / world_size)``."""
        return -(-self.num_samples // self.world_size)
