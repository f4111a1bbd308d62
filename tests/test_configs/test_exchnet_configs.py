"""Every ExchNet config has the reference's model, loss, optimiser and
schedule (aassxun/DSH_Analysis set_flag.py, flag "exchnet") and trains one
iteration, computes the class anchors and evaluates on a tiny tree in its
dataset's layout; the digits config trains a short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO
from mmqueryopt.engine.class_anchor_hook import ClassAnchorHook  # noqa
from test_method_configs import (TREES, evaluated_rounds, trains_on_tiny_tree)

# Samples per round (2,000, NABirds and VegFru 4,000); 40 rounds of 30
# passes, lr x 0.1 after round 35, batch 16 throughout.
SAMPLES = dict(cub=2000, aircraft=2000, food101=2000, nabirds=4000,
               vegfru=4000)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/exchnet/exchnet_*bit.py'))
    if osp.basename(p).split('_')[1] in SAMPLES)


def test_twenty_configs():
    assert len(CONFIGS) == 20


def load(name):
    dataset, bits = name[len('exchnet_'):-len('bit.py')].split('_')
    return Config.fromfile(osp.join(REPO, 'configs/exchnet', name)), \
        dataset, int(bits)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_is_the_references_protocol(name):
    cfg, dataset, bits = load(name)
    model = cfg.model
    assert model.head == dict(type='ExchNetHashHead', code_length=bits,
                              in_channels=5 * 2048)
    assert model.neck.type == 'ExchNetNeck'
    assert (model.neck.num_parts, model.neck.exchange_round,
            model.neck.exchange_prob) == (4, 35, 0.5)
    assert model.neck.init_cfg.prefix == 'layer4.'
    assert model.backbone.num_stages == 3
    assert model.loss == dict(type='ExchNetLoss', spatial_weight=1.0,
                              channel_weight=1.0, align_weight=1.0,
                              channel_margin=0.4)
    assert model.database == dict(type='ClassAnchorDatabase', gamma=0.0,
                                  similarity='soft')
    assert cfg.custom_hooks[-1] == dict(type='ClassAnchorHook')
    assert [h.type for h in cfg.custom_hooks[:2]] == [
        'ADSHRoundHook', 'RetrievalDatabaseHook']
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=SAMPLES[dataset],
        epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler.milestones == [35]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)


# CUB at 12 and 48 bits (trains_on_tiny_tree): the other code
# lengths differ only in head.code_length (checked above).
TRAINED = [
    n for n in CONFIGS
    if trains_on_tiny_tree(*n[len('exchnet_'):-len('bit.py')].split('_'))
]


@pytest.mark.parametrize('name', TRAINED)
def test_config_trains_one_iteration(name, tmp_path):
    cfg, dataset, bits = load(name)
    make_tree, dataset_type = TREES[dataset]
    root = str(make_tree(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg = None  # no network here
    cfg.model.neck.init_cfg = None
    # Anchors after round 0, as after the reference's iteration 35.
    cfg.model.neck.exchange_round = 1
    cfg.train_dataloader.sampler.num_samples = 2
    cfg.train_dataloader.sampler.epochs_per_round = 1
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        assert cfg[loader].dataset.type == dataset_type
        cfg[loader].dataset.update(data_root=root, warn_size=False)
    cfg.train_dataloader.dataset.pipeline[1].scale = 32
    cfg.val_dataloader.dataset.pipeline[1].scale = 36
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 32
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    database = runner.model.database
    assert database.codes.shape == (len(runner.train_dataloader.dataset),
                                    bits)
    assert database.has_anchors
    assert database.class_anchors.shape[1:] == (4, 2048)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def test_digits_config_trains_one_round(digits_root, tmp_path):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/exchnet/exchnet_digits_12bit.py'))
    # The exchange starts with the lr drop, as in the reference.
    assert cfg.model.neck.exchange_round == cfg.param_scheduler.milestones[
        0] == 8
    assert cfg.model.head.in_channels == 5 * 64
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.sampler.update(num_samples=32, epochs_per_round=1)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = digits_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert runner.message_hub.get_scalar('train/loss_spatial').current() > 0
    assert runner.model.database.codes.shape == (1437, 12)
    assert not runner.model.database.has_anchors  # before round 8
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
