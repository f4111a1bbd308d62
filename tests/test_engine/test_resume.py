"""Resuming a killed run: bit-for-bit continuation, and refusals."""
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.fileio import load_checkpoint_file
from probe_hooks import KillAfterEpochHook, Killed

class LogCapture(logging.Handler):
    """Collect what MMEngine's current logger emits."""

    def __enter__(self):
        self.records = []
        MMLogger.get_current_instance().addHandler(self)
        return self

    def emit(self, record):
        self.records.append(record.getMessage())

    def __exit__(self, *exc):
        MMLogger.get_current_instance().removeHandler(self)

    @property
    def text(self):
        return '\n'.join(self.records)


ROUNDS, EPOCHS_PER_ROUND = 3, 2
KILLED_AFTER = 2  # rounds (= epochs) done when the run dies


def three_round_cfg(digits_root, work_dir):
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=ROUNDS,
                          epochs_per_round=EPOCHS_PER_ROUND, num_samples=48)
    cfg.default_hooks.checkpoint.interval = 1
    return cfg


@pytest.fixture(scope='module')
def killed_run(digits_root, tmp_path_factory):
    """Work dir of a 3-round run killed after round 2, and a copy of its
    last checkpoint kept out of the checkpoint hook's reach."""
    init_default_scope('mmqueryopt')
    work_dir = str(tmp_path_factory.mktemp('killed'))
    runner = Runner.from_cfg(three_round_cfg(digits_root, work_dir))
    runner.register_hook(KillAfterEpochHook(KILLED_AFTER))
    with pytest.raises(Killed):
        runner.train()
    ckpt = osp.join(str(tmp_path_factory.mktemp('ckpt')), 'killed.pth')
    shutil.copy(osp.join(work_dir, f'epoch_{KILLED_AFTER}.pth'), ckpt)
    return work_dir, ckpt


def test_resumed_run_matches_uninterrupted_bit_for_bit(
        digits_root, killed_run, tmp_path):
    init_default_scope('mmqueryopt')
    whole = Runner.from_cfg(
        three_round_cfg(digits_root, str(tmp_path / 'whole')))
    whole.train()

    # Resume as a user does; without a fixed seed, so the seeds must come
    # back from the checkpoint too.
    work_dir, _ = killed_run
    cfg = three_round_cfg(digits_root, work_dir)
    cfg.randomness.seed = None
    config = str(tmp_path / 'resume.py')
    cfg.dump(config)
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--resume'], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f'resumed epoch: {KILLED_AFTER}' in log
    # Log lines name the round and the pass; round 1 was not run again.
    assert 'Round(train) [3/3][pass 2/2][3/3]' in log
    assert 'Round(train) [1/3]' not in log

    last = ROUNDS
    resumed = load_checkpoint_file(osp.join(work_dir, f'epoch_{last}.pth'))
    expected = whole.model.state_dict()
    assert resumed['state_dict'].keys() == expected.keys()
    differing = [
        key for key, value in expected.items()
        if not torch.equal(resumed['state_dict'][key], value)
    ]
    assert not differing
    # B did change in the resumed round, so the comparison is not vacuous.
    killed = load_checkpoint_file(
        killed_run[1])['state_dict']['database.codes']
    assert not torch.equal(killed, expected['database.codes'])


@pytest.mark.parametrize('change, message', [
    (dict(code_length=24), 'code_length=12.*model 24'),
    (dict(relaxed_dims=48), r'\(1437, 96\).*relaxed_dims'),
])
def test_resume_refuses_another_head(digits_root, killed_run, tmp_path,
                                     change, message):
    init_default_scope('mmqueryopt')
    cfg = three_round_cfg(digits_root, str(tmp_path))
    cfg.model.head.update(change)
    cfg.resume, cfg.load_from = True, killed_run[1]
    with pytest.raises(ValueError, match=message):
        Runner.from_cfg(cfg).train()


def test_resume_refuses_another_training_set(digits_root, killed_run,
                                             tmp_path):
    init_default_scope('mmqueryopt')
    cfg = three_round_cfg(digits_root, str(tmp_path))
    cfg.train_dataloader.dataset.indices = 1000
    cfg.resume, cfg.load_from = True, killed_run[1]
    with pytest.raises(ValueError, match=r'1437 images.*\(1000 images'):
        Runner.from_cfg(cfg).train()


def test_resume_refuses_a_checkpoint_counting_passes(digits_root, killed_run,
                                                    tmp_path):
    """Before one epoch was one round, epoch numbers counted passes; such a
    checkpoint's epoch 4 would be read as round 4."""
    init_default_scope('mmqueryopt')
    old = load_checkpoint_file(killed_run[1])
    del old['meta']['adsh_rounds']
    path = str(tmp_path / 'old_numbering.pth')
    torch.save(old, path)
    cfg = three_round_cfg(digits_root, str(tmp_path / 'work'))
    cfg.resume, cfg.load_from = True, path
    with pytest.raises(ValueError, match='old_numbering.pth: it records no '
                       'ADSH round schedule'):
        Runner.from_cfg(cfg).train()


def lr_schedule_cfg(digits_root, work_dir, rounds):
    """Rounds of 16 images, lr x 0.1 from round 3."""
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=rounds,
                          epochs_per_round=1, num_samples=16)
    cfg.param_scheduler.milestones = [3]
    cfg.default_hooks.checkpoint.interval = 1
    return cfg


class RecordLr(Hook):

    def __init__(self):
        self.lrs = []

    def before_train_epoch(self, runner):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


@pytest.fixture(scope='module')
def two_round_run(digits_root, tmp_path_factory):
    """A run trained to round 2 of a 2-round schedule, and the 4-round run
    it should become when resumed with 4 rounds."""
    init_default_scope('mmqueryopt')
    short_dir = str(tmp_path_factory.mktemp('short'))
    Runner.from_cfg(lr_schedule_cfg(digits_root, short_dir, 2)).train()
    whole = Runner.from_cfg(lr_schedule_cfg(
        digits_root, str(tmp_path_factory.mktemp('whole')), 4))
    record = RecordLr()
    whole.register_hook(record)
    whole.train()
    return osp.join(short_dir, 'epoch_2.pth'), whole, record.lrs


def resume(cfg, checkpoint):
    cfg.resume, cfg.load_from = True, checkpoint
    runner = Runner.from_cfg(cfg)
    record = RecordLr()
    runner.register_hook(record)
    with LogCapture() as log:
        runner.train()
    return runner, record.lrs, log.text


def test_resume_with_more_rounds_takes_the_configs_lr_drop(
        digits_root, two_round_run, tmp_path):
    """The first run's scheduler ended at its max_epochs (2); MMEngine
    would restore that end and never drop the lr at round 3."""
    checkpoint, whole, whole_lrs = two_round_run
    assert whole_lrs == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4])
    runner, lrs, log = resume(
        lr_schedule_cfg(digits_root, str(tmp_path), 4), checkpoint)
    assert lrs == whole_lrs[2:]
    assert re.search(r'param_scheduler\[0\] \(MultiStepLR\)\.end: 2 -> 4',
                     log)
    expected = whole.model.state_dict()
    assert all(
        torch.equal(value, expected[key])
        for key, value in runner.model.state_dict().items())


def test_resume_with_an_earlier_milestone_applies_it_at_once(
        digits_root, two_round_run, tmp_path):
    checkpoint, _, _ = two_round_run
    cfg = lr_schedule_cfg(digits_root, str(tmp_path), 3)
    cfg.param_scheduler.milestones = [1]
    _, lrs, log = resume(cfg, checkpoint)
    assert lrs == pytest.approx([1e-4])
    assert 'milestones: Counter({3: 1}) -> Counter({1: 1})' in log
    assert re.search(r'lr: \[0\.001\] -> \[0\.0001\d*\]', log)


def test_resume_with_other_round_sizes_says_so(digits_root, two_round_run,
                                                tmp_path):
    checkpoint, _, _ = two_round_run
    cfg = lr_schedule_cfg(digits_root, str(tmp_path), 3)
    cfg.train_dataloader.sampler.update(num_samples=32, epochs_per_round=2)
    _, _, log = resume(cfg, checkpoint)
    assert ('from round 3 on the config applies: '
            'train_dataloader.sampler.num_samples: 16 -> 32; '
            'train_dataloader.sampler.epochs_per_round: 1 -> 2') in log


def test_resume_with_the_same_schedule_warns_nothing(
        digits_root, two_round_run, tmp_path):
    checkpoint, _, _ = two_round_run
    cfg = lr_schedule_cfg(digits_root, str(tmp_path), 2)
    cfg.train_cfg.max_epochs = 3
    cfg.param_scheduler.end = 2  # what the first run's scheduler had
    _, _, log = resume(cfg, checkpoint)
    assert 'Resuming' not in log


def test_resume_redoes_an_evaluation_the_kill_cut_short(digits_root,
                                                        tmp_path):
    """The checkpoint of round 2 is written before round 2's evaluation; a
    run killed in between must evaluate round 2 when resumed."""
    init_default_scope('mmqueryopt')

    def cfg_with_evaluation(work_dir):
        cfg = lr_schedule_cfg(digits_root, work_dir, 2)
        cfg.train_cfg.val_interval = 2
        return cfg

    whole = Runner.from_cfg(cfg_with_evaluation(str(tmp_path / 'whole')))
    whole.train()
    expected = whole.message_hub.get_scalar('val/retrieval/mAP').current()

    work_dir = str(tmp_path / 'killed')
    killed = Runner.from_cfg(cfg_with_evaluation(work_dir))
    killed.register_hook(KillAfterEpochHook(2))
    with pytest.raises(Killed):
        killed.train()
    cfg = cfg_with_evaluation(work_dir)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    with LogCapture() as log:
        runner.train()
    assert 'Resumed at epoch 2, which validates: validating first' in log.text
    assert runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() == expected
