"""Every SEMICON config has DSH_Analysis' schedule and optimiser and trains
one iteration plus an evaluation on a tiny tree in its dataset's layout;
the digits config trains a short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO
from test_method_configs import (TREES, evaluated_rounds, trains_on_tiny_tree)

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

    make_tree, dataset_type = TREES[dataset]
    root = str(make_tree(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg = None  # no network here
    cfg.model.neck.init_cfg = None
    cfg.train_dataloader.sampler.num_samples = 2
    cfg.train_dataloader.sampler.epochs_per_round = 1
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    # No 170 MB checkpoint files.
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        assert cfg[loader].dataset.type == dataset_type
        cfg[loader].dataset.update(data_root=root, warn_size=False)
    # Small crops: layer3 maps of 2x2.
    cfg.train_dataloader.dataset.pipeline[1].scale = 32
    cfg.val_dataloader.dataset.pipeline[1].scale = 36
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 32
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), bits)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def test_digits_config_trains_one_round(digits_root, tmp_path):
    """configs/semicon/semicon_digits_12bit.py, shrunk to one short round:
    it trains and evaluates."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/semicon/semicon_digits_12bit.py'))
    assert cfg.model.neck.init_cfg is None
    assert cfg.model.head.code_length == 12
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.sampler.update(num_samples=32, epochs_per_round=1)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = digits_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
