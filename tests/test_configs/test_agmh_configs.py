"""Every AGMH config: the authors' schedule, and one training iteration plus
evaluation on a tiny tree in its dataset's official layout."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

# The facts file's schedule: rounds, passes per round, samples per round.
SCHEDULES = dict(
    cub=(40, 30, 2000),
    aircraft=(40, 30, 2000),
    food101=(50, 30, 2000),
    nabirds=(50, 30, 4000),
    vegfru=(50, 30, 4000),
)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/agmh/agmh_*bit.py'))
    if osp.basename(p).split('_')[1] in SCHEDULES)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    dataset, bits = name[len('agmh_'):-len('bit.py')].rsplit('_', 1)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'agmh', name))
    rounds, passes, samples = SCHEDULES[dataset]
    assert cfg.model.head.code_length == int(bits)
    assert cfg.model.backbone.strides == (1, 2, 2, 1)
    assert cfg.model.database.similarity == 'soft'
    assert cfg.model.database.gamma == 200.0
    assert cfg.model.loss.adl.loss_weight == 0.5
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=passes)
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.train_cfg.max_epochs == rounds
    # Evaluated after every round, as the authors.
    assert evaluated_rounds(cfg) == list(range(1, rounds + 1))
    assert cfg.param_scheduler.milestones == [40]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4, nesterov=True)

    if not trains_on_tiny_tree(dataset, bits):
        return
    # 32-pixel crops: a 2 x 2 map after the stride-1 last stage.
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), int(bits))
    scalars = runner.message_hub.log_scalars
    assert 'train/loss_adl' in scalars
    # 0.5 x a mean inner product of probability vectors.
    assert 0 < scalars['train/loss_adl'].current() <= 0.5
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def test_digits_config_trains_one_iteration(digits_root, tmp_path):
    config = 'configs/agmh/agmh_digits_12bit.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.neck.type == 'AttributeDescriptorNeck'
    assert cfg.model.loss.type == 'AGMHLoss'
    assert evaluated_rounds(cfg) == list(range(1, 11))
    # One batch of 16.
    runner = run_digits_round(config, digits_root, tmp_path, num_samples=16)
    assert runner.iter == 1
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
