"""Every SEMICON config has DSH_Analysis' schedule and optimiser and trains
one iteration plus an evaluation on a tiny tree in its dataset's layout;
the digits config trains a short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

# DSH_Analysis' logs: lr per dataset, samples per round; 40 rounds of 30
# passes, lr x 0.1 after round 35, batch 16 for every dataset.
SETTINGS = dict(
    cub=(2.5e-4, 2000),
    aircraft=(2.5e-4, 2000),
    food101=(2.5e-4, 2000),
    nabirds=(5e-4, 4000),
    vegfru=(5e-4, 4000),
)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/semicon/semicon_*bit.py'))
    if osp.basename(p).split('_')[1] in SETTINGS)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    _, dataset, bits = name[:-len('bit.py')].split('_')
    bits = int(bits)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'semicon', name))
    lr, samples = SETTINGS[dataset]
    model = cfg.model
    assert model.head == dict(type='GlobalLocalHashHead', code_length=bits,
                              in_channels=2048)
    assert model.neck.mask_statistics == 'batch'
    assert model.neck.mask_exponent == 0.15
    assert model.neck.load_third_block is False
    assert model.loss == dict(type='ADSHLoss')
    assert model.database == dict(type='ADSHDatabase', gamma=200.0,
                                  similarity='soft')
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=lr, momentum=0.91, weight_decay=1e-4, nesterov=True)
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    # The masks use the batch's statistics: queries in the reference's
    # unshuffled batches of 16.
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.batch_size == 16
        assert loader.sampler == dict(type='DefaultSampler', shuffle=False)
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler.milestones == [35]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35
    ]
    # The other code lengths differ from the 12-bit file only in the head
    # (checked above; tests/test_models/test_semicon_model.py builds and
    # counts each, and runs the 32-bit split, 17 + 3 x 5): each dataset
    # trains at 12 bits.
    if not trains_on_tiny_tree(dataset, bits):
        return

    # Small crops: layer3 maps of 2x2.
    runner = run_on_tiny_tree(cfg, dataset, tmp_path,
                              pretrained=('backbone', 'neck'))
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), bits)


def test_digits_config_trains_one_round(digits_root, tmp_path):
    """configs/semicon/semicon_digits_12bit.py, shrunk to one short round:
    it trains and evaluates."""
    config = 'configs/semicon/semicon_digits_12bit.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.neck.init_cfg is None
    assert cfg.model.head.code_length == 12
    runner = run_digits_round(config, digits_root, tmp_path)
    assert runner.iter == 2
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
