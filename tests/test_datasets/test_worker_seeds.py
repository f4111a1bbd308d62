"""Dataloader workers draw new augmentations every epoch, and the same ones
again when an epoch is replayed (resume)."""
import random

import numpy as np
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, set_random_seed
from torch.utils.data import Dataset

from mmqueryopt.engine.epoch_seed_hook import epoch_seed


class RandomDraws(Dataset):
    """Each item is what a random transform would draw in the worker."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return f'{np.random.randint(2**31)} {random.random()}'


def epoch_draws(epoch, **loader_options):
    """Draws of one epoch, after EpochSeedHook's reseeding for it."""
    init_default_scope('mmqueryopt')
    set_random_seed(epoch_seed(0, epoch))
    loader = Runner.build_dataloader(
        dict(dataset=RandomDraws(), batch_size=4, num_workers=2,
             persistent_workers=False, collate_fn=dict(type='pseudo_collate'),
             sampler=dict(type='DefaultSampler', shuffle=False),
             **loader_options),
        seed=0)
    return [tuple(draw.split()) for batch in loader for draw in batch]


def test_epoch_worker_init_fn_draws_anew_each_epoch_and_replays():
    ours = dict(worker_init_fn=dict(type='mmqueryopt.epoch_worker_init_fn'))
    first, second = epoch_draws(0, **ours), epoch_draws(1, **ours)
    numpy_draws = [d[0] for d in first + second]
    python_draws = [d[1] for d in first + second]
    assert len(set(numpy_draws)) == len(set(python_draws)) == 16
    assert epoch_draws(1, **ours) == second


def test_mmengine_default_repeats_draws_every_epoch():
    """Why the configs set worker_init_fn: MMEngine's default seeds a worker
    from (seed, rank, worker id) alone."""
    assert epoch_draws(0) == epoch_draws(1)
