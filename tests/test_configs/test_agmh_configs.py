"""Every AGMH config: the authors' schedule, and one training iteration plus
evaluation on a tiny tree in its dataset's official layout."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO
from test_method_configs import TREES, evaluated_rounds

# The facts file's schedule: rounds, passes per round, samples per round.
SCHEDULES = dict(
    cub=(40, 30, 2000),
    aircraft=(40, 30, 2000),
    food101=(50, 30, 2000),
    nabirds=(50, 30, 4000),
    vegfru=(50, 30, 4000),
)
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/agmh/agmh_*bit.py'))
    if osp.basename(p).split('_')[1] in SCHEDULES)


def test_twenty_configs():
    assert len(CONFIGS) == 20


def _one_iteration(cfg, root: str, work_dir: str):
    """Train one batch of 2 and evaluate."""
    cfg.work_dir = work_dir
    cfg.train_dataloader.sampler.update(num_samples=2, epochs_per_round=1)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    # No checkpoint: writing ResNet-50 twice would take most of the time.
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    cfg.default_hooks.logger.interval = 1000
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        # MMEngine serialises a dataset after a full gc.collect() (a
        # second each in a big test session); nothing to save here.
        cfg[loader].dataset.update(
            data_root=root, warn_size=False, serialize_data=False)
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    dataset, bits = name[len('agmh_'):-len('bit.py')].rsplit('_', 1)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'agmh', name))
    rounds, passes, samples = SCHEDULES[dataset]
    assert cfg.model.head.code_length == int(bits)
    assert cfg.model.backbone.strides == (1, 2, 2, 1)
    assert cfg.model.database.similarity == 'soft'
    assert cfg.model.database.gamma == 200.0
    assert cfg.model.loss.adl.loss_weight == 0.5
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=passes)
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.train_cfg.max_epochs == rounds
    # Evaluated after every round, as the authors.
    assert evaluated_rounds(cfg) == list(range(1, rounds + 1))
    assert cfg.param_scheduler.milestones == [40]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4, nesterov=True)

    make_tree, dataset_type = TREES[dataset]
    assert cfg.train_dataloader.dataset.type == dataset_type
    root = str(make_tree(tmp_path / 'data'))
    cfg.model.backbone.init_cfg = None  # no network here
    # 32-pixel crops: a 2 x 2 map after the stride-1 last stage.
    cfg.train_dataloader.dataset.pipeline[1].scale = 32
    cfg.val_dataloader.dataset.pipeline[1].scale = 36
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 32
    runner = _one_iteration(cfg, root, str(tmp_path / 'work'))
    assert runner.iter == 1 and runner.epoch == 1
    assert runner.model.database.codes.shape == (len(
        runner.train_dataloader.dataset), int(bits))
    scalars = runner.message_hub.log_scalars
    assert 'train/loss_adl' in scalars
    # 0.5 x a mean inner product of probability vectors.
    assert 0 < scalars['train/loss_adl'].current() <= 0.5
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def test_digits_config_trains_one_iteration(digits_root, tmp_path):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/agmh/agmh_digits_12bit.py'))
    assert cfg.model.neck.type == 'AttributeDescriptorNeck'
    assert cfg.model.loss.type == 'AGMHLoss'
    assert evaluated_rounds(cfg) == list(range(1, 11))
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    runner = _one_iteration(cfg, digits_root, str(tmp_path / 'work'))
    assert runner.iter == 1
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
