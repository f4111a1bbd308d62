"""Make each training epoch's randomness a function of its number, so that
a resumed run replays the epochs it continues."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed

from mmqueryopt.registry import FUNCTIONS, HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python, NumPy and torch from ``(seed, epoch, rank)`` before
    every training epoch (= ADSH round).

    MMEngine's checkpoints hold no RNG state, so a resumed run would draw
    other random crops than the run it continues. Reseeding at each epoch
    start makes an epoch's randomness independent of everything before it:
    epoch ``e`` of a resumed run replays epoch ``e`` of the uninterrupted
    run bit for bit, with nothing added to the checkpoint, on every rank
    (each rank gets its own stream, since ranks see different images).

    Dataloader workers draw their own numbers. Torch seeds each new worker
    from the main process's torch generator, which this hook has just
    reseeded; :func:`epoch_worker_init_fn` (the configs'
    ``train_dataloader.worker_init_fn``) hands that seed on to NumPy and
    Python, so non-persistent workers draw new crops every epoch and replay
    them on resume. MMEngine's default ``worker_init_fn`` seeds NumPy from
    (seed, rank, worker id) alone, which repeats the same draws every epoch.
    Persistent workers start once and carry their RNG across epochs, so a
    resume with them is not exact; the hook warns.
    """

    # Before any other hook that might draw numbers when an epoch starts.
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if runner.iter > 0 and loader.num_workers > 0 and getattr(
                loader, 'persistent_workers', False):
            runner.logger.warning(
                'Resuming with persistent dataloader workers: their random '
                'augmentations restart from the first epoch\'s seeds, so the '
                'run will not replay the interrupted one exactly (set '
                'train_dataloader.persistent_workers=False for that)')

    def before_train_epoch(self, runner) -> None:
        set_random_seed(epoch_seed(runner.seed, runner.epoch, get_rank()))


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A well-mixed 32-bit seed for one epoch of one rank.

    Args:
        seed (int): The run's seed (``runner.seed``).
        epoch (int): The epoch about to start, from 0.
        rank (int): The process rank. Defaults to 0.

    Returns:
        int: In ``[0, 2**32)``, as NumPy requires.
    """
    sequence = np.random.SeedSequence([seed, epoch, rank])
    return int(sequence.generate_state(1)[0])


@FUNCTIONS.register_module()
def epoch_worker_init_fn(worker_id: int) -> None:
    """Seed a dataloader worker's NumPy and Python from its torch seed.

    Torch gives worker ``w`` the seed ``base + w``, with ``base`` drawn from
    the main process's generator when the epoch's iterator starts; under
    :class:`EpochSeedHook` that is a function of (seed, epoch, rank). Use as
    ``train_dataloader.worker_init_fn=dict(
    type='mmqueryopt.epoch_worker_init_fn')``
    (MMEngine looks functions up in its root registry, hence the scope).

    Args:
        worker_id (int): Unused; already part of torch's worker seed.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
