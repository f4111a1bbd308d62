"""Hook that drives ADSH's rounds inside MMEngine's epoch loop."""
from typing import Optional

import torch
from mmengine.dist import broadcast
from mmengine.hooks import Hook

from mmqueryopt.registry import HOOKS
from .round_sampler import RoundSampler
from .utils import unwrap_model


@HOOKS.register_module()
class ADSHRoundHook(Hook):
    """Size the database, reset U before each epoch, solve B at round ends.

    Rounds come from the training loader's :class:`RoundSampler`: the epoch
    loop runs ``rounds * epochs_per_round`` epochs, and after the last epoch
    of each round B is updated bit by bit from the U of that round's sampled
    images. B therefore changes only at round ends.

    Every epoch of a round serves every sampled image, so the update sees
    the last epoch's outputs whether U is cleared per round or per epoch.
    Clearing it per epoch means a run resumed mid-round never carries U
    rows over: under DDP every rank loads rank 0's U from the checkpoint,
    and the rows of rank 0 would otherwise be summed twice.

    Checkpoints also record the sampler's seed, which a resumed run adopts:
    without a fixed ``randomness.seed`` the new run's sampler was seeded
    afresh and would draw other rounds than the run it continues.
    """

    priority = 'NORMAL'

    def __init__(self):
        self._loaded_sampler_seed: Optional[int] = None

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        labels = torch.as_tensor(
            runner.train_dataloader.dataset.get_gt_labels(), dtype=torch.long)
        if model.num_database == 0:
            # Seeded so that every DDP rank starts from the same B.
            generator = torch.Generator().manual_seed(runner.seed)
            model.init_database(labels, generator=generator)
            # runner.seed differs per rank under randomness.diff_rank_seed.
            broadcast(model.database_codes, src=0)
        elif model.num_database != len(labels) or not torch.equal(
                model.database_labels.cpu(), labels):
            raise ValueError(
                f'the loaded database ({model.num_database} images) does not '
                f'match the training set ({len(labels)} images, labels in '
                f'dataset order): the checkpoint comes from another dataset')
        sampler = _round_sampler(runner)
        if runner.iter > 0 and self._loaded_sampler_seed is not None:
            sampler.seed = self._loaded_sampler_seed

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['meta']['round_sampler_seed'] = _round_sampler(runner).seed

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # The train loader may not exist yet (it never does in a test run):
        # before_train hands the seed to the sampler when resuming.
        self._loaded_sampler_seed = checkpoint.get('meta', {}).get(
            'round_sampler_seed')

    def before_train_epoch(self, runner) -> None:
        unwrap_model(runner.model).reset_sampled_codes()

    def after_train_epoch(self, runner) -> None:
        sampler = _round_sampler(runner)
        if (runner.epoch + 1) % sampler.epochs_per_round == 0:
            round_idx = runner.epoch // sampler.epochs_per_round
            unwrap_model(runner.model).update_database_codes(
                sampler.round_indices(round_idx))


def _round_sampler(runner) -> RoundSampler:
    sampler = runner.train_dataloader.sampler
    if not isinstance(sampler, RoundSampler):
        raise TypeError(
            f'ADSHRoundHook needs train_dataloader.sampler of type '
            f'RoundSampler, got {type(sampler).__name__}')
    return sampler
