"""ClassAnchorHook in a real (tiny) run of the ExchNet digits config: the
anchors are the class means of the part features over the training images
(test pipeline), computed after the rounds from exchange_round - 1 on;
training exchanges and aligns from exchange_round; checkpoints carry the
anchors; a model without an anchor database is refused before training."""
import os.path as osp
import uuid
from collections import defaultdict

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from conftest import REPO
from mmqueryopt.engine.class_anchor_hook import ClassAnchorHook  # noqa
from mmqueryopt.registry import DATASETS, MODELS


def tiny_cfg(digits_root, work_dir, rounds=2, exchange_round=1):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/exchnet/exchnet_digits_12bit.py'))
    cfg.work_dir = work_dir
    cfg.model.neck.exchange_round = exchange_round
    cfg.train_dataloader.sampler.update(num_samples=32, epochs_per_round=1)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = digits_root
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_epochs=rounds, val_interval=10**6)
    cfg.default_hooks.checkpoint.update(interval=1, save_best=None)
    cfg.default_hooks.logger.interval = 1000
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.experiment_name = f'tiny_{uuid.uuid4().hex[:8]}'
    return cfg


def independent_class_means(model, dataset_cfg, chunk=256):
    """Per-class float64 means of the part features (eval mode: each
    image's features are its own whatever the chunk)."""
    dataset = DATASETS.build(dataset_cfg)
    sums, counts = defaultdict(float), defaultdict(int)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(dataset), chunk):
            items = [dataset[i] for i in
                     range(start, min(start + chunk, len(dataset)))]
            data = model.data_preprocessor(pseudo_collate(items), False)
            parts = model.neck.part_features(model.backbone(data['inputs']))
            for sample, part in zip(data['data_samples'], parts):
                label = int(sample.gt_label)
                sums[label] = sums[label] + part.double()
                counts[label] += 1
    return {label: sums[label] / counts[label] for label in sums}, sum(
        counts.values())


def test_anchors_are_the_class_means_and_checkpoints_carry_them(
        digits_root, tmp_path):
    init_default_scope('mmqueryopt')
    cfg = tiny_cfg(digits_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    anchors = model.database.class_anchors
    assert anchors.shape == (10, 4, 64)
    # Round 2 (index 1 = exchange_round) exchanged and aligned.
    assert runner.message_hub.get_scalar('train/loss_align').current() > 0
    # The anchors of the last round: the final model's class means over
    # all 1,437 training images with the test pipeline.
    dataset_cfg = dict(cfg.train_dataloader.dataset,
                       pipeline=cfg.val_dataloader.dataset.pipeline)
    means, images = independent_class_means(model, dataset_cfg)
    assert images == 1437 and sorted(means) == list(range(10))
    for label, mean in means.items():
        torch.testing.assert_close(anchors[label].double(), mean,
                                   rtol=1e-5, atol=1e-6)
    # The round's checkpoint carries them; a fresh model loads them.
    checkpoint = osp.join(str(tmp_path), 'epoch_2.pth')
    init_default_scope('mmqueryopt')
    fresh = MODELS.build(cfg.model)
    assert not fresh.database.has_anchors
    load_checkpoint(fresh, checkpoint, map_location='cpu', logger='silent')
    assert torch.equal(fresh.database.class_anchors, anchors)


def test_no_anchors_before_their_round(digits_root, tmp_path):
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(
        tiny_cfg(digits_root, str(tmp_path), rounds=1, exchange_round=2))
    runner.train()
    assert not runner.model.database.has_anchors
    assert runner.message_hub.get_scalar('train/loss_align').current() == 0


def test_a_database_without_anchors_is_refused_before_training(
        digits_root, tmp_path):
    init_default_scope('mmqueryopt')
    cfg = tiny_cfg(digits_root, str(tmp_path))
    cfg.model.database = dict(type='ADSHDatabase', gamma=0.0,
                              similarity='soft')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match="type='ClassAnchorDatabase'"):
        runner.train()
    assert runner.iter == 0


def test_the_loader_reads_every_image_once():
    hook = ClassAnchorHook(dict(batch_size=4, dataset=dict(type='X'),
                                sampler=dict(type='InfiniteSampler')))
    runner = type('R', (), {})()
    cfg = hook._loader_cfg(runner)
    assert cfg['sampler'] == dict(type='DefaultSampler', shuffle=False,
                                  round_up=False)
    with pytest.raises(TypeError, match='ClassAnchorHook.dataloader'):
        ClassAnchorHook(dataloader='train')
