"""Every CSQ config has DSH_Analysis' setting and trains one iteration plus
an evaluation (the database encoded) on a tiny tree in its dataset's
layout; the digits config trains one short round; the reference's keys
convert into it."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.registry import MODELS
from reference_weights import reference_state_dict
from test_adsh_model import torchvision_reference
from test_method_configs import (check_encoded_database, evaluated_rounds,
                                 run_digits_round, run_on_tiny_tree,
                                 trains_on_tiny_tree)

# The datasets' classes and DSH_Analysis' samples per round.
DATASETS = dict(cub=(200, 2000), aircraft=(100, 2000), food101=(101, 2000),
                nabirds=(555, 4000), vegfru=(292, 4000))
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/csq/csq_*bit.py'))
    if osp.basename(p).split('_')[1] in DATASETS)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_has_the_reference_setting_and_trains(name, tmp_path):
    dataset, bits = name[len('csq_'):-len('bit.py')].split('_')
    classes, samples = DATASETS[dataset]
    cfg = Config.fromfile(osp.join(REPO, 'configs/csq', name))
    model = cfg.model
    assert model.head == dict(type='LinearHashHead', code_length=int(bits),
                              in_channels=2048, activation='tanh')
    assert model.loss == dict(type='CSQLoss', num_classes=classes,
                              code_length=int(bits), lambd=0.1)
    assert model.database == dict(type='EncodedDatabase')
    check_encoded_database(cfg)
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.param_scheduler.milestones == [35]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4)
    if not trains_on_tiny_tree(dataset, bits):
        return
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    assert runner.model.database.num_database == 0
    assert 'train/loss_center' in runner.message_hub.log_scalars


def test_reference_weights_give_the_reference_codes():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/csq/csq_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    reference = reference_state_dict('adsh', seed=5)
    converted = convert_state_dict(reference, 'csq')
    result = model.load_state_dict(converted, strict=False)
    # The centres are the loss's, drawn anew.
    assert result.missing_keys == ['loss_module.centers',
                                   'loss_module.tie_bits']
    assert not result.unexpected_keys
    # The reference's codes: tanh of torchvision's ResNet-50 with its fc.
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    expected = torch.tanh(torchvision_reference(reference, 12).eval()(images))
    with torch.no_grad():
        relaxed = model.double().eval().extract_feat(images)
    torch.testing.assert_close(relaxed, expected.detach(), rtol=0,
                               atol=1e-10)


def test_digits_config_trains_one_round(digits_root, tmp_path):
    runner = run_digits_round('configs/csq/csq_digits_12bit.py', digits_root,
                              tmp_path)
    assert runner.model.loss_module.centers.shape == (10, 12)
