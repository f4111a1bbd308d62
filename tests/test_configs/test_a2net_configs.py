"""Every A2-Net / A2-Net++ config has the paper's schedule and trains one
iteration plus an evaluation on a tiny tree in its dataset's layout."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO
from test_method_configs import TREES, evaluated_rounds
from mmqueryopt.models import A2NetLoss, DatabaseView

# The paper's schedule: rounds (T_max), lr drop, samples per round; 20
# passes per round, batch 16 throughout.
SCHEDULES = dict(
    cub=(60, 50, 2000),
    aircraft=(60, 50, 2000),
    food101=(70, 60, 2000),
    nabirds=(70, 60, 4000),
    vegfru=(70, 60, 4000),
)
CONFIGS = sorted(
    osp.basename(p)
    for pattern in ('a2net_*bit.py', 'a2netpp_*bit.py')
    for p in glob.glob(osp.join(REPO, 'configs', pattern.split('_')[0],
                                pattern))
    if osp.basename(p).split('_')[1] in SCHEDULES)


def test_forty_configs():
    assert len(CONFIGS) == 40


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    method, dataset, bits = name[:-len('bit.py')].split('_')
    bits = int(bits)
    cfg = Config.fromfile(osp.join(REPO, 'configs', method, name))
    rounds, drop, samples = SCHEDULES[dataset]
    model = cfg.model
    assert model.head.code_length == model.neck.num_attentions == bits
    assert model.head.in_channels == (bits + 1) * 2048
    # The code's switch, derived: half the run's rounds.
    assert model.loss.get('switch_round') is None
    assert cfg.train_cfg.max_epochs == rounds
    assert A2NetLoss().first_extra_round(
        DatabaseView(num_rounds=rounds)) == rounds // 2
    assert model.loss.formulation == 'code'
    assert model.database.similarity == 'soft'
    assert model.database.gamma == 200.0
    if method == 'a2netpp':
        assert model.head.image_sources == ('holistic', 'reconstructed')
        assert model.loss.pixel_weights == (0.01, 0.1)
    else:
        assert 'image_sources' not in model.head
        assert 'pixel_weights' not in model.loss
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=20)
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.train_cfg.max_epochs == rounds
    assert cfg.param_scheduler.milestones == [drop]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, rounds + 1)
        if (r <= drop and r % 5 == 0) or r > drop
    ]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)

    make_tree, dataset_type = TREES[dataset]
    root = str(make_tree(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg = None  # no network here
    cfg.model.neck.init_cfg = None
    cfg.train_dataloader.sampler.num_samples = 2
    cfg.train_dataloader.sampler.epochs_per_round = 1
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(save_best=None)
    # No 160-650 MB checkpoint files.
    cfg.default_hooks.checkpoint.update(interval=10**6, save_last=False)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        assert cfg[loader].dataset.type == dataset_type
        cfg[loader].dataset.update(data_root=root, warn_size=False)
    # Small crops: layer3 maps of 2x2 keep the 48-map local path cheap.
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
    """configs/a2net/a2net_digits_12bit.py, shrunk to one short round at
    16x16:
    it trains, switches its extra terms on at its switch round and
    evaluates."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/a2net/a2net_digits_12bit.py'))
    assert cfg.model.loss.get('switch_round') is None  # 10 // 2 = 5
    cfg.work_dir = str(tmp_path)
    cfg.model.loss.switch_round = 0
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
    assert runner.message_hub.get_scalar('train/loss_decorr').current() > 0
    assert runner.model.database.codes.shape == (1437, 12)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
