"""Every QueryOpt† config is its QueryOpt config plus the classifier and
its cross-entropy; each dataset's 12-bit config trains one iteration plus
an evaluation on a tiny tree in its dataset's layout; the digits config
trains one short round."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from test_method_configs import (run_digits_round, run_on_tiny_tree,
                                 trains_on_tiny_tree)

CLASSES = dict(cub=200, aircraft=100, food101=101, nabirds=555, vegfru=292)
CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(
        osp.join(REPO, 'configs/queryopt-cls/queryopt-cls_*bit.py'))
    if osp.basename(p).split('_')[1] in CLASSES)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_is_queryopt_with_the_classifier(name, tmp_path):
    dataset, bits = name[len('queryopt-cls_'):-len('bit.py')].split('_')
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt-cls', name))
    queryopt = Config.fromfile(
        osp.join(REPO, 'configs/queryopt', f'queryopt_{dataset}_{bits}bit.py'))
    assert cfg.model.head == dict(
        queryopt.model.head, type='QueryHashHeadWithClassifier',
        num_classes=CLASSES[dataset])
    assert cfg.model.loss == dict(type='QueryOptClsLoss', cls_weight=1.0)
    # All else is QueryOpt's: the data, the rounds, the optimiser.
    ours, theirs = cfg.to_dict(), queryopt.to_dict()
    for config in (ours, theirs):
        for key in ('head', 'loss'):
            config['model'].pop(key)
    assert ours == theirs
    if not trains_on_tiny_tree(dataset, bits):
        return
    runner = run_on_tiny_tree(cfg, dataset, tmp_path)
    assert 'train/loss_cls' in runner.message_hub.log_scalars


def test_digits_config_trains_one_round(digits_root, tmp_path):
    runner = run_digits_round(
        'configs/queryopt-cls/queryopt-cls_digits_12bit.py', digits_root,
        tmp_path)
    assert runner.model.head.classifier.out_features == 10
    assert 'train/loss_cls' in runner.message_hub.log_scalars
