"""Hook that drives ADSH's rounds inside MMEngine's epoch loop."""
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmqueryopt.datasets.round_cache import round_caches
from mmqueryopt.registry import HOOKS
from .round_sampler import RoundBatchSampler, RoundSampler
from .utils import unwrap_model

# What a checkpoint records of the round schedule; its absence marks a
# checkpoint of the former numbering, where an epoch was one pass.
_ROUND_KEYS = ('num_samples', 'epochs_per_round')


@HOOKS.register_module()
class ADSHRoundHook(Hook):
    """Tell the model's database (``model.database``) the training set,
    when each round starts and ends (ADSH: reset U, then solve B), and
    which pass of the round each batch belongs to.

    One MMEngine epoch is one ADSH round: the training loader's
    :class:`RoundSampler` serves the round's sampled images
    ``epochs_per_round`` times (passes), U holds each image's output of the
    last pass, and after the epoch B is updated bit by bit from that U. B
    therefore changes only between epochs, and schedules read in rounds
    (``max_epochs=40``, ``milestones=[30]``, ``val_interval=5``).

    Checkpoints (one per round) record the sampler's seed, which a resumed
    run adopts: without a fixed ``randomness.seed`` the new run's sampler
    was seeded afresh and would draw other rounds than the run it
    continues. They also record ``num_samples`` and ``epochs_per_round``: a
    resume that changes them goes on with the config's values and says so,
    and a checkpoint without them (written when an epoch was one pass) is
    refused, since its epoch count would be read as rounds.
    """

    priority = 'NORMAL'

    def __init__(self):
        self._loaded_meta: Optional[dict] = None

    def before_train(self, runner) -> None:
        labels = torch.as_tensor(
            runner.train_dataloader.dataset.get_gt_labels(), dtype=torch.long)
        # Seeded so that a fresh database is reproducible (the database
        # broadcasts rank 0's draw; runner.seed may differ per rank).
        generator = torch.Generator().manual_seed(runner.seed)
        unwrap_model(runner.model).database.prepare(labels, generator)
        sampler = get_round_sampler(runner.train_dataloader)
        if runner.iter > 0:
            self._adopt_resumed_rounds(runner, sampler)

    def _adopt_resumed_rounds(self, runner, sampler: RoundSampler) -> None:
        meta = self._loaded_meta or {}
        source = runner.cfg.get('load_from') or (
            f'the latest checkpoint in {runner.work_dir}')
        saved = meta.get('adsh_rounds')
        if saved is None:
            raise ValueError(
                f'cannot resume from {source}: it records no ADSH round '
                f'schedule (meta.adsh_rounds), so it was written by an '
                f'mmqueryopt older than "one epoch = one round" (its epoch '
                f'{runner.epoch} counts passes) or by another program. '
                f'Start a new run from its weights with load_from instead')
        changed = [
            f'train_dataloader.sampler.{key}: {saved[key]} -> '
            f'{getattr(sampler, key)}' for key in _ROUND_KEYS
            if saved.get(key) != getattr(sampler, key)
        ]
        if changed:
            runner.logger.warning(
                f'Resuming from {source} with another round schedule; from '
                f'round {runner.epoch + 1} on the config applies: ' +
                '; '.join(changed))
        if meta.get('round_sampler_seed') is not None:
            sampler.seed = meta['round_sampler_seed']

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        sampler = get_round_sampler(runner.train_dataloader)
        checkpoint['meta']['round_sampler_seed'] = sampler.seed
        checkpoint['meta']['adsh_rounds'] = {
            key: getattr(sampler, key) for key in _ROUND_KEYS}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # The train loader may not exist yet (it never does in a test run):
        # before_train applies what a resumed run needs.
        self._loaded_meta = checkpoint.get('meta', {})

    def before_train_epoch(self, runner) -> None:
        sampler = get_round_sampler(runner.train_dataloader)
        unwrap_model(runner.model).database.start_round(
            runner.epoch, runner.max_epochs,
            sampler.round_indices(runner.epoch))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        # The pass within the round (the authors' epoch), for parts whose
        # schedule counts passes (HashNet's continuation).
        batch_sampler = runner.train_dataloader.batch_sampler
        unwrap_model(runner.model).database.start_pass(
            batch_idx // batch_sampler.batches_per_pass,
            batch_sampler.sampler.epochs_per_round)

    def after_train_epoch(self, runner) -> None:
        sampler = get_round_sampler(runner.train_dataloader)
        unwrap_model(runner.model).database.end_round(
            sampler.round_indices(runner.epoch))
        for cache in round_caches(runner.train_dataloader.dataset):
            stats = cache.stats()
            runner.logger.info(
                f'Round cache: {stats["images"]} images decoded once '
                f'({stats["bytes"] / 2**20:,.0f} MiB of '
                f'{cache.max_bytes / 2**20:,.0f}), {stats["hits"]} reads '
                f'served from it, {stats["beyond_budget"]} decodes beyond '
                f'the budget')
            # Forgets the round's images and frees their memory; the
            # workers are idle between epochs, so no one is writing.
            cache.clear()


def get_round_sampler(dataloader) -> RoundSampler:
    """The :class:`RoundSampler` of a training loader batched by
    :class:`RoundBatchSampler`; a clear error for any other loader."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if not isinstance(batch_sampler, RoundBatchSampler):
        raise TypeError(
            f'ADSH training needs train_dataloader.sampler=dict(type='
            f"'RoundSampler', ...) and train_dataloader.batch_sampler=dict("
            f"type='RoundBatchSampler'), got batch sampler "
            f'{type(batch_sampler).__name__} over '
            f'{type(getattr(batch_sampler, "sampler", None)).__name__}')
    return batch_sampler.sampler
