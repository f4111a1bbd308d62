"""AtomicCheckpointHook on a toy MMEngine run: what it keeps, and what a
kill while it writes leaves behind."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmqueryopt.engine.checkpoint_io import load_resumable_checkpoint
from mmqueryopt.fileio import backend as checkpoint_backend
from mmqueryopt.fileio import load_checkpoint_file


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=out.sum()) if mode == 'loss' else list(out)


class RisingScore(BaseMetric):
    """Scores 1, 2, 3, ...: every evaluation is a new best."""

    def __init__(self):
        super().__init__()
        self.evaluations = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        self.evaluations += 1
        return dict(score=float(self.evaluations))


def toy_runner(work_dir, epochs=3):
    loader = dict(dataset=[dict(inputs=torch.ones(1))] * 4, batch_size=2,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    # Runners named alike (by default, the second they start in) share one
    # message hub, and with it the best score so far.
    return Runner(
        model=ToyModel(), work_dir=work_dir, default_scope='mmqueryopt',
        experiment_name=osp.basename(work_dir),
        train_dataloader=loader, val_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
        val_cfg=dict(), val_evaluator=[RisingScore()],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1,
            save_best='score', rule='greater')),
        log_level='WARNING')


def names(work_dir):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*'))
                  if p.endswith('.pth') or p.endswith('last_checkpoint'))


def test_keeps_the_newest_and_the_best_checkpoint(tmp_path):
    work_dir = str(tmp_path)
    toy_runner(work_dir).train()
    assert names(work_dir) == [
        'best_score_epoch_3.pth', 'epoch_3.pth', 'last_checkpoint'
    ]
    assert load_resumable_checkpoint(
        str(tmp_path / 'epoch_3.pth'))['meta']['epoch'] == 3
    assert not glob.glob(str(tmp_path / '.*'))  # no temporary files


class Killed(Exception):
    """Stands in for a kill inside the writer."""


def test_kill_while_writing_a_new_best_keeps_the_previous_best(
        tmp_path, monkeypatch):
    work_dir = str(tmp_path)
    written = []
    write = checkpoint_backend.atomic_write

    def dying_write(path, data):
        written.append(osp.basename(path))
        if osp.basename(path) == 'best_score_epoch_2.pth':
            raise Killed
        write(path, data)

    monkeypatch.setattr(checkpoint_backend, 'atomic_write', dying_write)
    with pytest.raises(Killed):
        toy_runner(work_dir).train()
    assert written[-1] == 'best_score_epoch_2.pth'
    # MMEngine's hook removes the previous best before writing the new one.
    assert names(work_dir) == [
        'best_score_epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'
    ]
    best = load_checkpoint_file(str(tmp_path / 'best_score_epoch_1.pth'))
    assert best['meta']['epoch'] == 1
    with open(str(tmp_path / 'last_checkpoint')) as f:
        assert load_resumable_checkpoint(f.read())['meta']['epoch'] == 2
