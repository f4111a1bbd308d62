"""Resuming a killed run: bit-for-bit continuation, and refusals."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO, tiny_digits_cfg
from probe_hooks import KillAfterEpochHook, Killed

ROUNDS, EPOCHS_PER_ROUND = 3, 2
KILLED_AFTER = 2 * EPOCHS_PER_ROUND  # epochs done when the run dies


def three_round_cfg(digits_root, work_dir):
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=ROUNDS,
                          epochs_per_round=EPOCHS_PER_ROUND, num_samples=48)
    cfg.default_hooks.checkpoint.interval = EPOCHS_PER_ROUND
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
    assert 'Epoch(train) [1]' not in log

    last = ROUNDS * EPOCHS_PER_ROUND
    resumed = torch.load(osp.join(work_dir, f'epoch_{last}.pth'))
    expected = whole.model.state_dict()
    assert resumed['state_dict'].keys() == expected.keys()
    differing = [
        key for key, value in expected.items()
        if not torch.equal(resumed['state_dict'][key], value)
    ]
    assert not differing
    # B did change in the resumed round, so the comparison is not vacuous.
    killed = torch.load(killed_run[1])['state_dict']['database_codes']
    assert not torch.equal(killed, expected['database_codes'])


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
