"""Every DAHNet config has DSH_Analysis' schedule, optimiser and class
count and trains one iteration plus an evaluation on a tiny tree in its
dataset's layout; the digits config trains a short round; a class count
below the labels' is one line naming the key."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO
from test_method_configs import (evaluated_rounds, run_digits_round,
                                 run_on_tiny_tree, trains_on_tiny_tree)

# set_flag.py DAH and the logs: lr, samples per round, classes; 40 rounds
# of 30 passes, lr x 0.1 after round 35, batch 16 for every dataset.
SETTINGS = dict(
    cub=(2.5e-4, 2000, 200),
    aircraft=(2.5e-4, 2000, 100),
    food101=(2.5e-4, 2000, 101),
    nabirds=(5e-4, 4000, 555),
    vegfru=(5e-4, 4000, 292),
)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/dahnet/dahnet_*bit.py'))
    if osp.basename(p).split('_')[1] in SETTINGS)


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    _, dataset, bits = name[:-len('bit.py')].split('_')
    bits = int(bits)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dahnet', name))
    lr, samples, classes = SETTINGS[dataset]
    model = cfg.model
    assert model.neck.type == 'DAHNetNeck'
    assert model.neck.init_cfg.prefix == 'layer4.'
    assert model.head == dict(type='DAHNetHashHead', code_length=bits,
                              num_classes=classes, in_channels=2048)
    assert model.loss == dict(type='DAHNetLoss')
    assert model.database == dict(type='ADSHDatabase', gamma=200.0,
                                  similarity='soft')
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=lr, momentum=0.91, weight_decay=1e-4, nesterov=True)
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=30)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == 40
    assert cfg.param_scheduler.milestones == [35]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, 41) if (r <= 35 and r % 5 == 0) or r > 35
    ]
    # The other lengths differ from the 12-bit file only in the head
    # (checked above; tests/test_models/test_dahnet_model.py counts each):
    # each dataset trains at 12 bits, CUB also at 32 (17 + 3 x 5 bits).
    if not trains_on_tiny_tree(dataset, bits):
        return
    # 32 x 32 crops: layer3 2 x 2 (FESM's stripes of 1), parts 1 x 1.
    runner = run_on_tiny_tree(cfg, dataset, tmp_path,
                              pretrained=('backbone', 'neck'))
    assert runner.iter == 1 and runner.epoch == 1
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), bits)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
    logged = runner.message_hub.log_scalars
    assert 'train/loss_cls' in logged and 'train/loss_part_cls' in logged


def test_digits_config_trains_one_round(digits_root, tmp_path):
    """configs/dahnet/dahnet_digits_12bit.py, shrunk to one short round."""
    config = 'configs/dahnet/dahnet_digits_12bit.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.model.neck.init_cfg is None
    assert cfg.model.head.num_classes == 10
    assert cfg.train_cfg.max_epochs == 5
    runner = run_digits_round(config, digits_root, tmp_path)
    assert runner.iter == 2
    assert runner.model.database.codes.shape == (1437, 12)


def test_too_few_classes_names_the_key(digits_root, tmp_path):
    """The digits' 10 classes against classifiers for 5: the first batch
    with a class beyond them stops training with one line naming the
    key."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/dahnet/dahnet_digits_12bit.py'))
    cfg.model.head.num_classes = 5
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.sampler.update(num_samples=64, epochs_per_round=1)
    cfg.train_dataloader.dataset.data_root = digits_root
    cfg.val_dataloader.dataset.data_root = digits_root
    cfg.test_dataloader = cfg.val_dataloader
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'^class id \d is outside the '
                       r"classifiers' model.head.num_classes=5: set it to "
                       r"the training set's number of classes$"):
        runner.train()
    assert runner.iter == 0
