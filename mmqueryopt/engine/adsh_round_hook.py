"""Hook that drives ADSH's rounds inside MMEngine's epoch loop."""
import torch
from mmengine.hooks import Hook

from mmqueryopt.registry import HOOKS
from .round_sampler import RoundSampler
from .utils import unwrap_model


@HOOKS.register_module()
class ADSHRoundHook(Hook):
    """Size the database, reset U when a round starts, solve B when it ends.

    Rounds come from the training loader's :class:`RoundSampler`: the epoch
    loop runs ``rounds * epochs_per_round`` epochs, and after the last epoch
    of each round B is updated bit by bit from the U of that round's sampled
    images. B therefore changes only at round ends.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        labels = torch.as_tensor(
            runner.train_dataloader.dataset.get_gt_labels(), dtype=torch.long)
        if model.num_database == 0:
            # Seeded so that every DDP rank starts from the same B.
            generator = torch.Generator().manual_seed(runner.seed)
            model.init_database(labels, generator=generator)
        elif model.num_database != len(labels) or not torch.equal(
                model.database_labels.cpu(), labels):
            raise ValueError(
                f'the loaded database ({model.num_database} images) does not '
                f'match the training set ({len(labels)} images, labels in '
                f'dataset order): the checkpoint comes from another dataset')
        _round_sampler(runner)

    def before_train_epoch(self, runner) -> None:
        if runner.epoch % _round_sampler(runner).epochs_per_round == 0:
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
