"""Every HashNet and DPSH config has its setting (the efficient setting over
DSH_Analysis' rounds, or DeepHash-pytorch's epochs) and trains one
iteration plus an evaluation against the encoded training split on a tiny
tree in its dataset's layout; the digits configs train one short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (check_encoded_database, evaluated_rounds,
                                 run_digits_round, run_on_tiny_tree,
                                 trains_on_tiny_tree)

# baselines_facts.md, "Shared DSH machinery": 2,000 images a round (4,000
# for NABirds and VegFru), 30 passes, batch 16, 40 rounds, lr x 0.1 after 35.
SAMPLES = dict(cub=2000, aircraft=2000, food101=2000, nabirds=4000,
               vegfru=4000)
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for method in ('hashnet', 'dpsh')
    for p in glob.glob(osp.join(REPO, f'configs/{method}/{method}_*bit.py'))
    if 'digits' not in p)
DHP_CONFIGS = ['configs/dpsh/dpsh_dhp-150e_cub_12bit.py',
               'configs/hashnet/hashnet_dhp-150e_cub_12bit.py']


def test_configs():
    assert len(CONFIGS) == 42
    assert set(DHP_CONFIGS) <= set(CONFIGS)


def check_dsh_setting(cfg, method, dataset):
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=SAMPLES[dataset],
        epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler.milestones == [35]
    # `it < 35 and (it + 1) % 5 == 0 or it >= 35`, it 0-based.
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35]
    # DSH_Analysis' HashNet optimiser; DPSH (not in DSH_Analysis) the same.
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=3e-4, momentum=0.9, weight_decay=5e-4)
    if method == 'hashnet':
        assert cfg.model.head.step_passes == 15
        assert cfg.model.head.get('init_cfg') is None
        assert cfg.model.database.rows == 'round'
    else:
        assert cfg.model.database.rows == 'dataset'


def check_dhp_setting(cfg, method):
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=None, epochs_per_round=1)
    assert cfg.train_dataloader.batch_size == (64 if method == 'hashnet'
                                               else 128)
    assert cfg.train_cfg.max_epochs == 150
    assert cfg.get('param_scheduler') is None
    assert evaluated_rounds(cfg) == list(
        range(15 if method == 'hashnet' else 5, 151,
              15 if method == 'hashnet' else 5))
    assert cfg.optim_wrapper.optimizer == dict(
        type='RMSprop', lr=1e-5, weight_decay=1e-5)
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageBGR', 'ResizeEdge', 'RandomFlip', 'RandomCrop',
        'PackInputs']
    assert cfg.model.head.init_cfg == dict(type='Normal', layer='Linear',
                                           std=0.01, bias=0)
    if method == 'hashnet':
        assert cfg.model.head.step_passes == 20
        assert cfg.model.database.rows == 'batch'


@pytest.mark.parametrize('config', CONFIGS)
def test_config_has_its_setting_and_trains(config, tmp_path):
    method, *variant, dataset, bits = osp.basename(config)[:-len(
        'bit.py')].split('_')
    cfg = Config.fromfile(osp.join(REPO, config))
    model = cfg.model
    assert (model.backbone.type, model.backbone.depth) == ('ResNet', 50)
    assert model.neck.type == 'GlobalAveragePooling'
    assert model.head.code_length == int(bits)
    assert model.head.type == dict(hashnet='ContinuationHashHead',
                                   dpsh='LinearHashHead')[method]
    assert model.loss == dict(
        hashnet=dict(type='HashNetLoss', alpha=0.1),
        dpsh=dict(type='DPSHLoss', alpha=0.1, inner_product_scale=0.5),
    )[method]
    if method == 'dpsh':
        assert model.head.activation is None
    if variant:
        check_dhp_setting(cfg, method)
    else:
        check_dsh_setting(cfg, method, dataset)
    check_encoded_database(cfg)
    if not trains_on_tiny_tree(dataset, bits):
        return
    if variant:
        cfg.train_dataloader.dataset.pipeline[3].crop_size = 32
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    num_train = len(runner.train_dataloader.dataset)
    memory_rows = dict(round=2, dataset=num_train, batch=0)[
        model.database.rows]
    assert runner.model.database.codes.shape == (memory_rows, int(bits))


@pytest.mark.parametrize('method', ['hashnet', 'dpsh'])
def test_digits_config_trains_one_round(method, digits_root, tmp_path):
    runner = run_digits_round(f'configs/{method}/{method}_digits_12bit.py',
                              digits_root, tmp_path)
    assert runner.iter == 2
    assert runner.model.database.codes.shape == (
        32 if method == 'hashnet' else 1437, 12)
