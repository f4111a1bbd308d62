"""Test-only hooks: record each rank's view of ADSH's rounds, or kill a run.

Subprocess runs import them through the config's ``custom_imports`` (the
tests folder is on their PYTHONPATH).
"""
import os.path as osp

import torch
from mmengine.dist import barrier, get_rank
from mmengine.hooks import Hook

from mmqueryopt.engine import unwrap_model
from mmqueryopt.registry import HOOKS


@HOOKS.register_module()
class RoundProbeHook(Hook):
    """Save, per rank, what each round trained on and what B became.

    ``<out_dir>/rank<r>.pth`` holds lists indexed by round (= epoch):
    ``indices`` (dataset indices served to this rank, in order, over the
    round's passes), ``batches`` (iterations per round), ``sampled_codes``
    (this rank's U just before the update), ``codes_before`` (B then) and
    ``codes_after`` (B after the update), plus ``labels``.

    Args:
        out_dir (str): Where the per-rank files go.
    """

    # Between the iterations' end and ADSHRoundHook's update (NORMAL).
    priority = 'ABOVE_NORMAL'

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.record = dict(indices=[], batches=[], sampled_codes=[],
                           codes_before=[], codes_after=[])

    def before_train_epoch(self, runner) -> None:
        self.record['indices'].append([])
        self.record['batches'].append(0)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.record['indices'][-1].extend(
            s.sample_idx for s in data_batch['data_samples'])
        self.record['batches'][-1] += 1

    def after_train_epoch(self, runner) -> None:
        model = unwrap_model(runner.model)
        self.record['sampled_codes'].append(
            model.database.sampled_codes.clone())
        self.record['codes_before'].append(model.database.codes.clone())

    def after_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        # B after round r is B before round r + 1; the last one is now.
        before = self.record['codes_before']
        self.record['codes_after'] = before[1:] + [
            model.database.codes.clone()]
        self.record['labels'] = model.database.labels.clone()
        torch.save(self.record,
                   osp.join(self.out_dir, f'rank{get_rank()}.pth'))


class Killed(RuntimeError):
    """Stands in for a SIGKILL between two epochs."""


@HOOKS.register_module()
class KillAfterEpochHook(Hook):
    """Raise :class:`Killed` once ``epochs`` epochs (rounds) are done and
    saved.

    Args:
        epochs (int): Epochs (rounds) to complete before dying.
    """

    priority = 'LOWEST'  # after CheckpointHook has written its checkpoint

    def __init__(self, epochs: int):
        self.epochs = epochs

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epochs:
            barrier()  # no rank dies while rank 0 still writes
            raise Killed(f'killed after epoch {self.epochs}')
