"""Samplers for ADSH's rounds: one MMEngine epoch is one round."""
from typing import Iterator, List, Optional, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmqueryopt.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class RoundSampler(Sampler):
    """Serve one ADSH round per epoch: ``num_samples`` images drawn anew,
    each served ``epochs_per_round`` times (the paper's epochs, here called
    passes).

    Epoch ``r`` is round ``r``. It uses :meth:`round_indices` ``(r)``, drawn
    without replacement from a generator seeded by ``seed + r``, so every
    rank and every resumed run draws the same subset. Under DDP the subset
    is split once per round (rank ``i`` takes positions ``i, i + W, ...``),
    so each image of the round is seen by exactly one rank; every pass
    reshuffles the shard, seeded by (round, pass).

    When the world size does not divide ``num_samples`` the first ranks take
    one image more and every other rank repeats one image of its own shard,
    so that all ranks run the same number of iterations (DDP's collectives
    must pair up) while no sampled image is dropped. The copy only rewrites
    its own rank's row of U, so the ranks' rows stay disjoint.

    Pair it with :class:`RoundBatchSampler`, which keeps every batch within
    one pass as the authors' per-epoch loader does.

    Args:
        dataset (Sized): The training set (the ADSH database).
        epochs_per_round (int): Passes over each round's subset (the paper's
            epochs per round), at least 1.
        num_samples (int, optional): Images per round, at least the world
            size and at most ``len(dataset)``. None takes them all.
        shuffle (bool): Shuffle the shard every pass. Defaults to True.
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
                f'train_dataloader.sampler.num_samples={num_samples} must be '
                f'in [1, {num_database}]: the training set has '
                f'{num_database} images')
        if not isinstance(epochs_per_round, int) or epochs_per_round < 1:
            raise ValueError(
                f'train_dataloader.sampler.epochs_per_round must be an '
                f'integer >= 1, got {epochs_per_round!r}')
        self.num_database = num_database
        self.num_samples = num_samples
        self.epochs_per_round = epochs_per_round
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.rank, self.world_size = get_dist_info()
        if num_samples < self.world_size:
            raise ValueError(
                f'train_dataloader.sampler.num_samples={num_samples} is '
                f'smaller than the world size {self.world_size}: a rank '
                f'would have no image of its own to train on')
        self.epoch = 0

    @property
    def shard_size(self) -> int:
        """Images per rank and pass, the same on every rank:
        ``ceil(num_samples / world_size)``."""
        return -(-self.num_samples // self.world_size)

    def round_indices(self, round_idx: int) -> torch.Tensor:
        """The database rows sampled in round ``round_idx``, (num_samples,)."""
        generator = torch.Generator().manual_seed(self.seed + round_idx)
        return torch.randperm(
            self.num_database, generator=generator)[:self.num_samples]

    def set_epoch(self, epoch: int) -> None:
        """Called by MMEngine's ``DistSamplerSeedHook`` before each epoch
        (= round)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        shard = self.round_indices(self.epoch)[self.rank::self.world_size]
        if len(shard) < self.shard_size:
            shard = torch.cat([shard, shard[:1]])
        for pass_idx in range(self.epochs_per_round):
            if self.shuffle:
                # The stream of the former one-pass epochs (epoch number
                # round * E + pass), so orders did not change with epoch =
                # round; seeded, so a resumed run replays them.
                flat_pass = self.epoch * self.epochs_per_round + pass_idx
                generator = torch.Generator().manual_seed(
                    self.seed + 1_000_003 * (flat_pass + 1))
                yield from shard[torch.randperm(
                    len(shard), generator=generator)].tolist()
            else:
                yield from shard.tolist()

    def __len__(self) -> int:
        """Indices per rank and round: ``epochs_per_round * shard_size``."""
        return self.epochs_per_round * self.shard_size


@DATA_SAMPLERS.register_module()
class RoundBatchSampler(Sampler):
    """Batch a :class:`RoundSampler` pass by pass.

    A round's passes are the authors' epochs, each a DataLoader of its own
    with a short last batch when the batch size does not divide the shard.
    Batching the round as one stream would mix two passes in one batch and
    change the number of SGD steps per round.

    Args:
        sampler (RoundSampler): The round sampler (MMEngine passes the
            loader's ``sampler``).
        batch_size (int): Images per batch.
        drop_last (bool): Drop each pass's short last batch. Defaults to
            False, as the authors' loader.
    """

    def __init__(self, sampler: RoundSampler, batch_size: int,
                 drop_last: bool = False):
        if not isinstance(sampler, RoundSampler):
            raise TypeError(
                f'RoundBatchSampler needs train_dataloader.sampler of type '
                f'RoundSampler, got {type(sampler).__name__}')
        if batch_size < 1:
            raise ValueError(
                f'train_dataloader.batch_size must be >= 1, got {batch_size}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    @property
    def batches_per_pass(self) -> int:
        shard_size = self.sampler.shard_size
        if self.drop_last:
            return shard_size // self.batch_size
        return -(-shard_size // self.batch_size)

    def __iter__(self) -> Iterator[List[int]]:
        indices = iter(self.sampler)
        shard_size = self.sampler.shard_size
        for _ in range(self.sampler.epochs_per_round):
            one_pass = [next(indices) for _ in range(shard_size)]
            for batch_idx in range(self.batches_per_pass):
                start = batch_idx * self.batch_size
                yield one_pass[start:start + self.batch_size]

    def __len__(self) -> int:
        """Batches per round: ``epochs_per_round * batches_per_pass``."""
        return self.sampler.epochs_per_round * self.batches_per_pass
