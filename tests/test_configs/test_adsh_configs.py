"""Every ADSH config has DSH_Analysis' setting and trains one iteration
plus an evaluation on a tiny tree in its dataset's layout; the digits
config trains one short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

# baselines_facts.md, "Shared DSH machinery": 2,000 images a round (4,000
# for NABirds and VegFru), 30 passes, batch 16, 40 rounds, lr x 0.1 after 35.
SAMPLES = dict(cub=2000, aircraft=2000, food101=2000, nabirds=4000,
               vegfru=4000)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/adsh/adsh_*bit.py'))
    if osp.basename(p).split('_')[1] in SAMPLES)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_has_the_reference_setting_and_trains(name, tmp_path):
    dataset, bits = name[len('adsh_'):-len('bit.py')].split('_')
    cfg = Config.fromfile(osp.join(REPO, 'configs/adsh', name))
    model = cfg.model
    assert (model.backbone.type, model.backbone.depth) == ('ResNet', 50)
    assert model.neck.type == 'GlobalAveragePooling'
    assert model.head == dict(type='LinearHashHead', code_length=int(bits),
                              in_channels=2048, activation='tanh')
    assert model.loss.type == 'ADSHLoss'
    assert model.database == dict(type='ADSHDatabase', gamma=200.0,
                                  similarity='soft')
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=SAMPLES[dataset],
        epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler.milestones == [35]
    # `it < 35 and (it + 1) % 5 == 0 or it >= 35`, it 0-based.
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-5)
    if not trains_on_tiny_tree(dataset, bits):
        return
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), int(bits))


def test_digits_config_trains_one_round(digits_root, tmp_path):
    runner = run_digits_round('configs/adsh/adsh_digits_12bit.py',
                              digits_root, tmp_path)
    assert runner.model.head.activation == 'tanh'
    assert runner.model.database.similarity == 'soft'
    assert runner.model.database.codes.shape == (1437, 12)
