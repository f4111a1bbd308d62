"""Hook that makes each training epoch's randomness a function of its
number, so that a resumed run replays the epochs it continues."""
import numpy as np
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed

from mmqueryopt.registry import HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python, NumPy and torch from ``(seed, epoch, rank)`` before
    every training epoch.

    MMEngine's checkpoints hold no RNG state, so a resumed run would draw
    other random crops than the run it continues. Reseeding at each epoch
    start makes an epoch's randomness independent of everything before it:
    epoch ``e`` of a resumed run replays epoch ``e`` of the uninterrupted
    run bit for bit, with nothing added to the checkpoint, on every rank
    (each rank gets its own stream, since ranks see different images).

    Dataloader workers draw their own numbers. MMEngine's default
    ``worker_init_fn`` seeds each worker from (seed, rank, worker id) when
    it starts, which replays exactly when workers restart every epoch
    (``persistent_workers=False``) or there are none (``num_workers=0``).
    Persistent workers carry their RNG across epochs and start afresh after
    a resume, so the hook warns that such a resume is not exact.
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
