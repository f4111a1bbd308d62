"""Every ExchNet config has the reference's model, loss, optimiser and
schedule (aassxun/DSH_Analysis set_flag.py, flag "exchnet") and trains one
iteration, computes the class anchors and evaluates on a tiny tree in its
dataset's layout; the digits config trains a short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from mmqueryopt.engine.class_anchor_hook import ClassAnchorHook  # noqa
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

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
    # Anchors after round 0, as after the reference's iteration 35.
    cfg.model.neck.exchange_round = 1
    runner = run_on_tiny_tree(cfg, dataset, tmp_path,
                              pretrained=('backbone', 'neck'))
    database = runner.model.database
    assert database.codes.shape == (len(runner.train_dataloader.dataset),
                                    bits)
    assert database.has_anchors
    assert database.class_anchors.shape[1:] == (4, 2048)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def test_digits_config_trains_one_round(digits_root, tmp_path):
    config = 'configs/exchnet/exchnet_digits_12bit.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    # The exchange starts with the lr drop, as in the reference.
    assert cfg.model.neck.exchange_round == cfg.param_scheduler.milestones[
        0] == 8
    assert cfg.model.head.in_channels == 5 * 64
    runner = run_digits_round(config, digits_root, tmp_path)
    assert runner.iter == 2
    assert runner.message_hub.get_scalar('train/loss_spatial').current() > 0
    assert runner.model.database.codes.shape == (1437, 12)
    assert not runner.model.database.has_anchors  # before round 8
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
