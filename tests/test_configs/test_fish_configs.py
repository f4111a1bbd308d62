"""Every FISH config has DSH_Analysis' setting; each dataset's config trains
one iteration plus an evaluation (against the label codes) on a tiny tree
in its dataset's layout; the digits config trains one short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

# The datasets' classes and DSH_Analysis' samples per round.
DATASETS = dict(cub=(200, 2000), aircraft=(100, 2000), food101=(101, 2000),
                nabirds=(555, 4000), vegfru=(292, 4000))
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/fish/fish_*bit.py'))
    if osp.basename(p).split('_')[1] in DATASETS)
# The tiny trees' training images span 3 classes at most: the label codes
# follow the labels for up to 3 bits (LabelCodeDatabase refuses more), so
# every length trains the same 3-bit model there: one config per dataset
# trains, the others' settings are checked.
TINY_TREE_BITS = 3


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_has_the_reference_setting(name, tmp_path):
    dataset, bits = name[len('fish_'):-len('bit.py')].split('_')
    classes, samples = DATASETS[dataset]
    cfg = Config.fromfile(osp.join(REPO, 'configs/fish', name))
    model = cfg.model
    assert model.neck == dict(type='FeatureFilterNeck')
    assert model.head == dict(type='ClassMaskedHashHead',
                              code_length=int(bits), num_classes=classes,
                              in_channels=2048, class_mask_rate=0.7)
    assert model.loss == dict(type='FishLoss', threshold_range=(0.9, 1.0))
    assert model.database == dict(type='LabelCodeDatabase', iterations=15,
                                  sigma=1.0, delta=1e-4)
    (database_hook, ) = [h for h in cfg.custom_hooks
                         if h.type == 'RetrievalDatabaseHook']
    # The label codes the database holds ('auto' takes them when held).
    assert database_hook.get('source') in ('learned', 'auto')
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.param_scheduler.milestones == [5, 15, 35]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-2, momentum=0.9, weight_decay=0)
    if not trains_on_tiny_tree(dataset, bits):
        return
    model.head.code_length = TINY_TREE_BITS
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    assert runner.model.database.num_database > 0
    scalars = runner.message_hub.log_scalars
    assert {'train/loss_cls', 'train/loss_code',
            'train/loss_cls_erased'} <= set(scalars)


def test_digits_config_trains_one_round(digits_root, tmp_path):
    runner = run_digits_round('configs/fish/fish_digits_12bit.py',
                              digits_root, tmp_path)
    assert runner.model.head.hash_layer.weight.shape == (12, 10)
    # 12 bits for 10 classes: the label codes still follow the labels.
    assert runner.model.database.num_database == 1437
