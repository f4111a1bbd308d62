"""ExchNet's neck, head and database: sizes from the facts file, the
forward against a per-part float64 recomputation, the feature exchange at
the round where it switches on, the anchors in the database's view and
checkpoints, bad input."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from conftest import REPO
from mmqueryopt.models import ADSHDatabase
from mmqueryopt.models.databases.class_anchor_database import (
    ClassAnchorDatabase, ClassAnchorView)
from mmqueryopt.models.necks.exchnet_neck import ExchNetNeck
from mmqueryopt.registry import MODELS

# baselines_facts.md, ExchNet: trainable parameters at 12/24/32/48 bits.
FACTS_PARAMS = {12: 40_067_220, 24: 40_190_112, 32: 40_272_040,
                48: 40_435_896}


def model_cfg(bits=12):
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/exchnet/exchnet_cub_{bits}bit.py')).model
    cfg.backbone.init_cfg = None
    cfg.neck.init_cfg = None
    return cfg


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    init_default_scope('mmqueryopt')
    cfg = model_cfg(bits)
    assert not cfg.get('frozen_modules')
    backbone = MODELS.build(cfg.backbone)
    with torch.device('meta'):
        neck, head = MODELS.build(cfg.neck), MODELS.build(cfg.head)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa
    assert count(backbone) + count(neck) + count(head) == FACTS_PARAMS[bits]
    # Facts: backbone 8,543,296; each layer4 copy 14,964,736; the tower
    # 1,471,560; the hash layer 10,241 k.
    assert count(backbone) == 8_543_296
    assert count(neck.local_refiner) == count(neck.global_refiner) \
        == 14_964_736
    assert count(neck.attention_tower) == 1_471_560
    assert count(head) == 10_241 * bits


def small_neck(**kwargs):
    """ExchNet's neck on 64-channel maps with one basic block per copy."""
    torch.manual_seed(0)
    return ExchNetNeck(in_channels=64, out_channels=32,
                       refiner_block='BasicBlock', num_refiner_blocks=1,
                       **kwargs)


def test_forward_is_per_part_refinement_in_float64():
    """Part i is the local copy of A_i * T, pooled (the M parts folded into
    the batch equal refining each alone); the feature is [parts...,
    global]; in training each part's spatial distribution is the softmax
    over positions of its map's channel mean, its channel distribution the
    softmax of its pooled vector."""
    neck = small_neck().double().eval()
    feat = torch.randn(3, 64, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        evaluated = neck((feat, ))
        maps = neck.attention_tower(feat)
        local = [neck.local_refiner(maps[:, i:i + 1] * feat)
                 for i in range(4)]
        expected = torch.cat([m.mean((2, 3)) for m in local] +
                             [neck.global_refiner(feat).mean((2, 3))], 1)
    assert set(evaluated) == {'feats'}
    assert expected.shape == (3, 5 * 32)
    torch.testing.assert_close(evaluated['feats'], expected, rtol=0,
                               atol=1e-12)
    neck.train()
    with torch.no_grad():
        outputs = neck(feat)
        part_maps = neck.part_maps(feat)  # (3, 4, 32, 3, 3)
    assert set(outputs) == {'feats', 'part_feats', 'spatial_dists',
                            'channel_dists'}
    pooled = part_maps.sum((3, 4)) / 9
    torch.testing.assert_close(outputs['part_feats'], pooled)
    torch.testing.assert_close(outputs['feats'][:, :4 * 32],
                               pooled.flatten(1))
    channel_mean = part_maps.sum(2).flatten(2) / 32
    spatial = channel_mean.exp() / channel_mean.exp().sum(2, keepdim=True)
    torch.testing.assert_close(outputs['spatial_dists'], spatial)
    channel = pooled.exp() / pooled.exp().sum(2, keepdim=True)
    torch.testing.assert_close(outputs['channel_dists'], channel)


def anchor_view(round_index, labels, anchors):
    return ClassAnchorView(round_index=round_index, num_rounds=40,
                           labels=labels, indices=torch.arange(len(labels)),
                           class_anchors=anchors[labels])


@pytest.mark.parametrize('prob', [0.0, 1.0])
def test_exchange_switches_on_at_its_round(prob):
    neck = small_neck(exchange_round=3, exchange_prob=prob).double().train()
    feat = torch.randn(4, 64, 6, 6, dtype=torch.float64)
    labels = torch.tensor([1, 0, 1, 2])
    anchors = torch.randn(3, 4, 32, dtype=torch.float64)
    with torch.no_grad():
        plain = neck(feat)
        before = neck(feat, batch=anchor_view(2, labels, anchors))
        after = neck(feat, batch=anchor_view(3, labels, anchors))
    # Round 2 (0-based): no exchange, no anchors for the loss.
    assert 'anchor_feats' not in before
    torch.testing.assert_close(before['feats'], plain['feats'], rtol=0,
                               atol=0)
    # Round 3: every part replaced (prob 1) or none (prob 0).
    assert torch.equal(after['anchor_feats'], anchors[labels])
    own = plain['part_feats']
    expected = anchors[labels] if prob == 1 else own
    torch.testing.assert_close(after['part_feats'], expected, rtol=0,
                               atol=0)
    torch.testing.assert_close(after['feats'][:, :4 * 32],
                               expected.flatten(1), rtol=0, atol=0)
    torch.testing.assert_close(after['feats'][:, 4 * 32:],
                               plain['feats'][:, 4 * 32:], rtol=0, atol=0)
    # The distributions are the parts' own, before the exchange.
    torch.testing.assert_close(after['channel_dists'],
                               own.softmax(2), rtol=0, atol=0)


def test_exchange_draws_per_image_and_part():
    neck = small_neck(exchange_round=1).train()
    feat = torch.randn(64, 64, 4, 4)
    labels = torch.arange(64) % 5
    anchors = torch.randn(5, 4, 32) + 100  # far from any own feature
    torch.manual_seed(3)
    with torch.no_grad():
        parts = neck(feat, batch=anchor_view(1, labels, anchors))[
            'part_feats']
    exchanged = (parts == anchors[labels]).all(2)
    own = (parts < 50).all(2)
    assert torch.equal(exchanged, ~own)
    # 256 independent fair draws: within 4.5 standard deviations of 128.
    assert abs(int(exchanged.sum()) - 128) < 36
    # Not one draw per image: some images keep some parts only.
    assert ((exchanged.sum(1) > 0) & (exchanged.sum(1) < 4)).any()
    # Evaluation never exchanges (no batch is passed there).
    neck.eval()
    assert set(neck(feat)) == {'feats'}


def test_retriever_loss_at_the_switch_round():
    """Through HashRetriever: the database's view hands the anchors of
    the batch's classes; loss_align is 0 before the exchange round and
    ||P - A|| / n from it (prob 0: P the own parts)."""
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/exchnet/exchnet_digits_12bit.py')).model
    cfg.neck.update(exchange_round=2, exchange_prob=0.0)
    model = MODELS.build(cfg).train()
    labels = torch.tensor([0, 1, 1, 2, 0, 2])
    model.database.prepare(labels)
    model.database.start_round(1, 4, torch.arange(6))
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(int(c))
               for i, c in enumerate(labels)]
    images = torch.randn(6, 3, 32, 32)
    losses = model(images, samples, mode='loss')
    assert losses['loss_align'].item() == 0
    assert losses['loss_quant'].item() == 0  # gamma 0
    anchors = torch.randn(3, 4, 64)
    model.database.set_class_anchors(anchors)
    model.database.start_round(2, 4, torch.arange(6))
    model.eval()  # BatchNorm's statistics fixed: one forward to compare
    with torch.no_grad():
        parts = model.neck.part_features(model.backbone(images))
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    with torch.no_grad():
        losses = model(images, samples, mode='loss')
    expected = (parts.double() - anchors[labels].double()).norm() / 6
    assert losses['loss_align'].item() == pytest.approx(expected.item(),
                                                        rel=1e-5)


def test_database_keeps_and_hands_out_the_anchors():
    database = ClassAnchorDatabase(code_width=4)
    assert database.gamma == 0.0 and database.similarity == 'soft'
    database.prepare(torch.tensor([0, 1, 2, 1]))
    view = database.batch_view(torch.tensor([1, 3]), torch.tensor([1, 2]))
    assert view.class_anchors is None
    anchors = torch.randn(3, 4, 8)
    database.set_class_anchors(anchors)
    view = database.view(torch.tensor([1, 3]), torch.tensor([1, 2]),
                         torch.float32)
    assert torch.equal(view.class_anchors, anchors[[1, 2]])
    assert view.database_codes.shape == (4, 4)  # ADSH's view besides
    # A checkpoint carries them; a fresh database adopts their size.
    fresh = ClassAnchorDatabase(code_width=4)
    fresh.load_state_dict(database.state_dict())
    assert torch.equal(fresh.class_anchors, anchors)
    # Saved before any were computed: empty, and still empty when loaded.
    empty = ClassAnchorDatabase(code_width=4)
    empty.prepare(torch.tensor([0, 1, 2, 1]))
    fresh.load_state_dict(empty.state_dict())
    assert not fresh.has_anchors
    with pytest.raises(ValueError, match='one class id per image'):
        database.batch_view(torch.tensor([0]), torch.ones(1, 3))


def test_bad_input_names_the_key():
    with pytest.raises(ValueError, match='model.neck.num_parts'):
        ExchNetNeck(num_parts=1)
    with pytest.raises(ValueError, match='model.neck.exchange_round'):
        ExchNetNeck(exchange_round=0)
    with pytest.raises(ValueError, match='model.neck.exchange_prob'):
        ExchNetNeck(exchange_prob=1.5)
    with pytest.raises(ValueError, match='model.head.code_length'):
        MODELS.build(dict(type='ExchNetHashHead', code_length=0))
    head = MODELS.build(dict(type='ExchNetHashHead', code_length=4,
                             in_channels=10))
    with pytest.raises(TypeError, match="model.neck=dict\\(type='ExchNetN"):
        head(torch.zeros(2, 10))
    # The exchange round reached with a database that keeps no anchors.
    neck = small_neck(exchange_round=1).train()
    database = ADSHDatabase(code_width=4)
    database.prepare(torch.tensor([0, 1]))
    database.start_round(1, 4, torch.arange(2))
    view = database.batch_view(torch.arange(2), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="type='ClassAnchorDatabase'"):
        neck(torch.zeros(2, 64, 4, 4), batch=view)


def test_head_passes_the_part_statistics_in_training_only():
    head = MODELS.build(dict(type='ExchNetHashHead', code_length=3,
                             in_channels=10))
    feats = dict(feats=torch.randn(2, 10), part_feats=torch.zeros(2, 4, 2))
    expected = torch.tanh(feats['feats'] @ head.fc.weight.T + head.fc.bias)
    head.train()
    outputs = head(feats)
    assert set(outputs) == {'relaxed_codes', 'part_feats'}
    torch.testing.assert_close(outputs['relaxed_codes'], expected)
    head.eval()
    torch.testing.assert_close(head(feats), expected)
