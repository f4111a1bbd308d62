"""Every dataset x bit-length config builds and trains one iteration on a
tiny tree in its dataset's official layout."""
import glob
import os.path as osp
from types import SimpleNamespace
from typing import Optional

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import EpochBasedTrainLoop, Runner
from mmengine.runner.utils import calc_dynamic_intervals

import dataset_trees  # noqa: I100
from conftest import REPO
from mmqueryopt.engine.retrieval_database_hook import database_loader_cfg
from mmqueryopt.registry import MODELS

TREES = dict(
    cub=(dataset_trees.make_cub, 'CUB200'),
    aircraft=(dataset_trees.make_aircraft, 'FGVCAircraftHash'),
    food101=(dataset_trees.make_food, 'Food101Hash'),
    nabirds=(dataset_trees.make_nabirds, 'NABirds'),
    vegfru=(dataset_trees.make_vegfru, 'VegFru'),
)
# The facts file's schedule: rounds, epochs (passes) per round, samples,
# LR drop round and the authors' evaluation step.
SCHEDULES = dict(
    cub=(40, 30, 2000, 30, 30),
    aircraft=(40, 30, 2000, 30, 30),
    food101=(120, 10, 2000, 90, 90),
    nabirds=(50, 30, 4000, 30, 40),
    vegfru=(50, 30, 4000, 30, 40),
)
# The ResNet-50 configs, queryopt_<dataset>_<bits>bit.py (configs that name
# another backbone or the digits are tested elsewhere).
CONFIGS = sorted(
    osp.basename(p)
    for p in glob.glob(osp.join(REPO, 'configs/queryopt/queryopt_*bit.py'))
    if osp.basename(p).split('_')[1] in SCHEDULES
    and len(osp.basename(p).split('_')) == 3)


def evaluated_rounds(cfg) -> list:
    """The rounds after which MMEngine's epoch loop validates, found by
    running its own loop with epochs that do nothing."""
    evaluated = []
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    loop._runner = SimpleNamespace(
        call_hook=lambda *args, **kwargs: None,
        model=None,
        val_loop=SimpleNamespace(run=lambda: evaluated.append(loop.epoch)))
    loop._max_epochs, loop._epoch = cfg.train_cfg.max_epochs, 0
    loop.stop_training = False
    loop.val_begin = cfg.train_cfg.get('val_begin', 1)
    loop.val_interval = cfg.train_cfg.val_interval
    loop.dynamic_milestones, loop.dynamic_intervals = calc_dynamic_intervals(
        loop.val_interval, cfg.train_cfg.get('dynamic_intervals'))
    loop.run_epoch = lambda: setattr(loop, '_epoch', loop._epoch + 1)
    loop.run()
    return evaluated


def test_twenty_configs():
    assert len(CONFIGS) == 20


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, tmp_path):
    dataset, bits = name[len('queryopt_'):-len('bit.py')].rsplit('_', 1)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'queryopt', name))
    rounds, epochs, samples, drop, step = SCHEDULES[dataset]
    assert cfg.model.head.code_length == int(bits)
    assert cfg.train_dataloader.sampler == dict(
        type='RoundSampler', num_samples=samples, epochs_per_round=epochs)
    assert cfg.train_dataloader.batch_sampler == dict(
        type='RoundBatchSampler')
    # One epoch is one round.
    assert cfg.train_cfg.max_epochs == rounds
    assert cfg.param_scheduler.milestones == [drop]
    assert evaluated_rounds(cfg) == [
        r for r in range(1, rounds + 1)
        if (r <= step and r % 5 == 0) or r > step
    ]
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=3e-4, momentum=0.9, weight_decay=1e-4)
    assert cfg.train_dataloader.batch_size == 16

    if not trains_on_tiny_tree(dataset, bits, every_dataset=True):
        return
    make_tree, dataset_type = TREES[dataset]
    root = str(make_tree(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg = None  # no network here
    cfg.train_dataloader.sampler.num_samples = 2
    cfg.train_dataloader.sampler.epochs_per_round = 1
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(save_best=None)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        assert cfg[loader].dataset.type == dataset_type
        cfg[loader].dataset.update(data_root=root, warn_size=False)
    cfg.train_dataloader.dataset.pipeline[1].scale = 64
    cfg.val_dataloader.dataset.pipeline[1].scale = 72
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 64
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    model = runner.model
    assert model.database.codes.shape == (len(
        runner.train_dataloader.dataset), 96)
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


def trains_on_tiny_tree(dataset: str, bits: int,
                        every_dataset: bool = False) -> bool:
    """Whether a method's ``<dataset>_<bits>bit`` config trains on its tiny
    tree in the tests: CUB at 12 and 48 bits, and with ``every_dataset``
    (QueryOpt's configs, which cover the five dataset layouts for every
    method) each dataset's 12-bit config. The other configs differ only in
    the code length or the dataset base, which their settings checks
    cover; a ResNet-50 iteration per config would cost CI minutes."""
    bits = int(bits)
    return (dataset == 'cub' and bits in (12, 48)) or (every_dataset
                                                       and bits == 12)


def run_on_tiny_tree(cfg, dataset: str, tmp_path, crop: int = 32,
                     pretrained=('backbone', ),
                     before_build=None) -> Runner:
    """Train one iteration (two images, one pass) of a dataset config and
    evaluate, on a tiny tree in that dataset's layout, at ``crop`` pixels,
    with no pretrained weights and no checkpoint files.

    Args:
        cfg (Config): A ``<method>_<dataset>_<k>bit.py`` config.
        dataset (str): A key of ``TREES``.
        tmp_path: pytest's folder.
        crop (int): Train crop and test centre crop, in pixels.
        pretrained (Sequence[str]): Model parts whose ``init_cfg`` loads
            ImageNet weights (dropped here: no network).
        before_build (callable, optional): Called with the tree's root
            before the runner is built (e.g. to point a hook's own loader
            at it).

    Returns:
        Runner: After ``train()``.
    """
    make_tree, dataset_type = TREES[dataset]
    root = str(make_tree(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    for part in pretrained:
        cfg.model[part].init_cfg = None
    cfg.train_dataloader.sampler.update(num_samples=2, epochs_per_round=1)
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(
        save_best=None, interval=10**6, save_last=False)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        assert cfg[loader].dataset.type == dataset_type
        cfg[loader].dataset.update(
            data_root=root, warn_size=False, serialize_data=False)
    cfg.train_dataloader.dataset.pipeline[1].scale = crop
    cfg.val_dataloader.dataset.pipeline[1].scale = crop + crop // 8
    cfg.val_dataloader.dataset.pipeline[2].crop_size = crop
    if before_build is not None:
        before_build(root)
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
    return runner


def check_encoded_database(cfg):
    """No learned database: evaluation encodes the training split, read
    like the queries."""
    (hook, ) = [h for h in cfg.custom_hooks
                if h['type'] == 'RetrievalDatabaseHook']
    assert hook['source'] == 'auto' and not hook.get('dataloader')
    assert not MODELS.get(cfg.model.database.type).holds_codes
    loader = database_loader_cfg(cfg, 'val')
    assert loader['dataset'] == dict(
        cfg.train_dataloader.dataset,
        pipeline=cfg.val_dataloader.dataset.pipeline)
    assert loader['sampler'] == dict(type='DefaultSampler', shuffle=False)


def run_digits_round(config: str, digits_root: str, tmp_path,
                     num_samples: int = 32,
                     options: Optional[dict] = None) -> Runner:
    """Train one short round (``num_samples`` images, one pass, 16x16
    crops) of a method's digits config and evaluate, without checkpoints.

    Args:
        config (str): Path under the repository, e.g.
            ``'configs/adsh/adsh_digits_12bit.py'``.
        digits_root (str): The digits exported at 16x16 (the fixture).
        tmp_path: pytest's folder.
        num_samples (int): Images in the round.
        options (dict, optional): ``--cfg-options``-style keys to set
            before the runner is built.

    Returns:
        Runner: After ``train()``.
    """
    cfg = Config.fromfile(osp.join(REPO, config))
    if options:
        cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.sampler.update(num_samples=num_samples,
                                        epochs_per_round=1)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        # MMEngine serialises a dataset after a full gc.collect() (a
        # second each in a big test session); nothing to save here.
        loader.dataset.update(data_root=digits_root, serialize_data=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint.update(
        interval=10**6, save_best=None, save_last=False)
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1
    return runner
