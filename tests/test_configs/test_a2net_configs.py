"""Every A2-Net / A2-Net++ config has the paper's schedule and trains one
iteration plus an evaluation on a tiny tree in its dataset's layout."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)
from mmqueryopt.models import A2NetLoss, DatabaseView

# The paper's schedule: rounds (T_max), lr drop, samples per round; 20
# passes per round, batch 16 throughout.
SCHEDULES = dict(
    cub=(60, 50, 2000),
    aircraft=(60, 50, 2000),
    food101=(70, 60, 2000),
    nabirds=(70, 60, 4000),
    vegfru=(70, 60, 4000),
)
CONFIGS = sorted(
    osp.basename(p)
    for pattern in ('a2net_*bit.py', 'a2netpp_*bit.py')
    for p in glob.glob(osp.join(REPO, 'configs', pattern.split('_')[0],
                                pattern))
    if osp.basename(p).split('_')[1] in SCHEDULES)


def test_forty_configs():
    assert len(CONFIGS) == 40


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    method, dataset, bits = name[:-len('bit.py')].split('_')
    bits = int(bits)
    cfg = Config.fromfile(osp.join(REPO, 'configs', method, name))
    rounds, drop, samples = SCHEDULES[dataset]
    model = cfg.model
    assert model.head.code_length == model.neck.num_attentions == bits
    assert model.head.in_channels == (bits + 1) * 2048
    # The code's switch, derived: half the run's rounds.
    assert model.loss.get('switch_round') is None
    assert cfg.train_cfg.max_epochs == rounds
    assert A2NetLoss().first_extra_round(
        DatabaseView(num_rounds=rounds)) == rounds // 2
    assert model.loss.formulation == 'code'
    assert model.database.similarity == 'soft'
    assert model.database.gamma == 200.0
    if method == 'a2netpp':
        assert model.head.image_sources == ('holistic', 'reconstructed')
        assert model.loss.pixel_weights == (0.01, 0.1)
    else:
        assert 'image_sources' not in model.head
        assert 'pixel_weights' not in model.loss
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=20)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == rounds
    assert cfg.param_scheduler.milestones == [drop]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, rounds + 1)
        if (r <= drop and r % 5 == 0) or r > drop
    ]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)

    if not trains_on_tiny_tree(dataset, bits):
        return
    # Small crops: layer3 maps of 2x2 keep the 48-map local path cheap.
    runner = run_on_tiny_tree(cfg, dataset, tmp_path,
                              pretrained=('backbone', 'neck'))
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), bits)


def test_digits_config_trains_one_round(digits_root, tmp_path):
    """configs/a2net/a2net_digits_12bit.py, shrunk to one short round at
    16x16:
    it trains, switches its extra terms on at its switch round and
    evaluates."""
    config = 'configs/a2net/a2net_digits_12bit.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.loss.get('switch_round') is None  # 10 // 2 = 5
    runner = run_digits_round(
        config, digits_root, tmp_path,
        options={'model.loss.switch_round': 0})
    assert runner.iter == 2
    assert runner.message_hub.get_scalar('train/loss_decorr').current() > 0
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
