"""DAHNet's parts: parameter counts from the facts file; FESM, MCM and CFM
against float64 transcriptions written independently here (index
arithmetic, explicit softmaxes and norms, the reference's layouts); the
neck's stepwise parts; where the pretrained layer4 blocks land; the head's
train-only logits; bad inputs."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from mmqueryopt.models.layers.channel_fusion import ChannelFusion
from mmqueryopt.models.layers.cross_map_mixing import cross_map_mixing
from mmqueryopt.models.layers.enhance_suppress import EnhanceSuppress
from mmqueryopt.models.necks.dahnet_neck import DAHNetNeck
from mmqueryopt.registry import MODELS

# baselines_facts.md, DAHNet: trainable parameters at C = 200 classes
# (12 and 48 bits from the facts; 24 and 32 add 2048 per bit).
FACTS_PARAMS = {12: 66_683_862, 24: 66_708_438, 32: 66_724_822,
                48: 66_757_590}


def model_cfg(bits=12, dataset='cub'):
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/dahnet/dahnet_{dataset}_{bits}bit.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.init_cfg = None
    return cfg.model


def count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    init_default_scope('mmqueryopt')
    cfg = model_cfg(bits)
    backbone = MODELS.build(cfg.backbone)
    # Neck and head on the meta device: sizes without the memory.
    with torch.device('meta'):
        neck, head = MODELS.build(cfg.neck), MODELS.build(cfg.head)
    assert count(backbone) + count(neck) + count(head) == FACTS_PARAMS[bits]
    # Facts: backbone 8,543,296; FESM 2,054; trans 6,039,552;
    # refine_global 14,964,736; refine_local 36,290,048 of which the CFM
    # 27,364,864; cls + cls_loc 2 x 2049 C; W 2048 k.
    assert count(backbone) == 8_543_296
    assert count(neck.enhance_suppress) == 2_054
    assert count(neck.part_transition) == 6_039_552
    assert count(neck.global_refiner) == 14_964_736
    assert count(neck.local_refiner) == 36_290_048
    assert count(neck.local_refiner[1]) == 27_364_864
    assert count(head.cls) == count(head.part_cls) == 2049 * 200
    assert count(head) == 2048 * bits + 2 * 2049 * 200


def batch_norm_f64(x, weight, bias, mean, var, training):
    """BN by hand: batch statistics over all but the channel axis (biased
    variance) in training, the running ones in evaluation."""
    dims = [d for d in range(x.dim()) if d != 1]
    if training:
        mean = x.mean(dims)
        var = ((x - mean.reshape(1, -1, *[1] * (x.dim() - 2)))**2).mean(dims)
    shape = (1, -1) + (1, ) * (x.dim() - 2)
    return ((x - mean.reshape(shape)) / (var.reshape(shape) + 1e-5).sqrt() *
            weight.reshape(shape) + bias.reshape(shape))


def conv1x1_f64(x, weight, bias=None):
    # Contiguous as a conv's output (the dropout masks follow the layout).
    out = torch.einsum('oc,bchw->bohw', weight.flatten(1), x).contiguous()
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def bn_params(bn):
    return [t.double() for t in (bn.weight, bn.bias, bn.running_mean,
                                 bn.running_var)]


def fesm_f64(module, x, training):
    """FESM as the reference computes it: per stripe conv + BN + ReLU,
    mean, softmax over the 2 stripes, rows x columns; the peak of each
    image (W >= 0.95 max) multiplied by 0.5."""
    batch, _, height, width = x.shape

    def stripe_scores(scorer, stripes):
        conv, bn = scorer[0], scorer[1]
        scores = []
        for stripe in stripes:
            out = conv1x1_f64(stripe, conv.weight.double(), conv.bias.double())
            out = batch_norm_f64(out, *bn_params(bn), training).clamp_min(0)
            scores.append(out.mean((1, 2, 3)))
        scores = torch.stack(scores, 1)  # (B, 2)
        return scores.exp() / scores.exp().sum(1, keepdim=True)

    rows = stripe_scores(module.row_scorer,
                         [x[:, :, :height // 2], x[:, :, height // 2:]])
    cols = stripe_scores(module.col_scorer,
                         [x[:, :, :, :width // 2], x[:, :, :, width // 2:]])
    weights = torch.empty(batch, 1, height, width, dtype=x.dtype)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                weights[b, 0, i, j] = (rows[b, i // (height // 2)] *
                                       cols[b, j // (width // 2)])
    boost = x + 0.5 * x * weights
    peak = weights.flatten(1).max(1).values.reshape(batch, 1, 1, 1)
    keep = torch.where(weights < 0.95 * peak, 1.0, 0.5)
    return boost, x * keep, weights


@pytest.mark.parametrize('training', [False, True])
def test_fesm_against_float64_transcription(training):
    torch.manual_seed(0)
    module = EnhanceSuppress(5)
    for bn in (module.row_scorer[1], module.col_scorer[1]):
        bn.running_mean.fill_(0.2)
        bn.running_var.fill_(1.5)
    module.train(training)
    x = torch.rand(3, 5, 6, 4, dtype=torch.float64) * 2
    expected_boost, expected_sup, weights = fesm_f64(module, x, training)
    boost, sup = module.double()(x)
    torch.testing.assert_close(boost, expected_boost, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sup, expected_sup, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(module.weight_map(x), weights)
    # Rows of one stripe share a weight, and the stripes' weights sum to
    # 1 per direction: W sums to (h / 2) (w / 2) over the map.
    torch.testing.assert_close(weights.sum((1, 2, 3)),
                               torch.full((3, ), 6.0, dtype=torch.float64))
    # The suppressed positions are exactly each image's peak quadrant(s).
    assert ((sup == 0.5 * x).all(1) == (weights >= 0.95 * weights.amax(
        (1, 2, 3), keepdim=True))[:, 0]).all()


def test_fesm_normalises_each_stripe_on_its_own_in_training():
    module = EnhanceSuppress(2).train()
    x = torch.zeros(2, 2, 4, 4)
    x[:, :, :2] = 1.0   # the top stripe bright, the bottom one dark
    module.row_scorer[0].weight.data.fill_(1.0)
    module.row_scorer[0].bias.data.zero_()
    module(x)
    # Each stripe's batch is constant: two updates of the running mean
    # from 0 with momentum 0.1, by the stripes' means 2 then 0.
    assert module.row_scorer[1].num_batches_tracked == 2
    torch.testing.assert_close(module.row_scorer[1].running_mean,
                               torch.tensor([0.9 * 0.2 + 0.0]))


def test_fesm_needs_even_map_sides():
    with pytest.raises(ValueError, match='7x7 map into 2 stripes'):
        EnhanceSuppress(4)(torch.rand(1, 4, 7, 7))


def test_mcm_against_hand_formulas():
    generator = torch.Generator().manual_seed(3)
    o1, o2, o3 = (torch.rand(2, 4, 3, 2, dtype=torch.float64,
                             generator=generator) for _ in range(3))

    def agreement(high, low):
        cos = ((high * low).sum(1) / (high.norm(dim=1) * low.norm(dim=1)))
        s = cos.flatten(1).exp()
        s = s / s.sum(1, keepdim=True)
        rest = (1 - s).exp()
        rest = rest / rest.sum(1, keepdim=True)
        return s.reshape(2, 1, 3, 2), rest.reshape(2, 1, 3, 2)

    s21, r21 = agreement(o2, o1)
    s32, r32 = agreement(o3, o2)
    expected = [o1 + o2 * r21, o2 + 0.5 * (o1 * s21 + o3 * r32),
                o3 + o2 * s32]
    for ours, theirs in zip(cross_map_mixing([o1, o2, o3]), expected):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match='at least 2 maps'):
        cross_map_mixing([o1])


def cfm_f64(module, x, training, seed):
    """CFM as the reference: x + CoordAtt(x) (h-swish, sigmoid gate), then
    ConvMlp; depthwise 3x3 by shifted sums; GELU by erf; the dropout masks
    drawn as the reference draws them (after conv1, and over the
    (B, h*w, C) tokens), from the global generator seeded with seed."""
    att, mlp = module.coord_attention, module.mlp
    y = x.mean(3, keepdim=True) * x.mean(2, keepdim=True)
    y = conv1x1_f64(y, att.conv1.weight.double(), att.conv1.bias.double())
    y = batch_norm_f64(y, *bn_params(att.bn1), training)
    y = y * (y + 3).clamp(0, 6) / 6
    gate = 1 / (1 + (-conv1x1_f64(y, att.conv2.weight.double(),
                                  att.conv2.bias.double())).exp())
    x = x + x * gate

    def gelu(t):
        return 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))

    torch.manual_seed(seed)

    def dropout(t):
        # The reference's nn.Dropout draws its mask on a tensor of t's
        # layout from the global generator.
        return F.dropout(torch.ones_like(t), mlp.drop.p, training) * t

    h = conv1x1_f64(x, mlp.conv1[0].weight.double(),
                    mlp.conv1[0].bias.double())
    h = batch_norm_f64(gelu(h), *bn_params(mlp.conv1[2]), training)
    h = dropout(h)
    height, width = h.shape[2:]
    padded = F.pad(h, (1, 1, 1, 1))
    kernel = mlp.proj.weight.double()[:, 0]
    depthwise = sum(
        padded[:, :, di:di + height, dj:dj + width] *
        kernel[:, di, dj].reshape(1, -1, 1, 1)
        for di in range(3) for dj in range(3))
    h = depthwise + mlp.proj.bias.double().reshape(1, -1, 1, 1) + h
    h = batch_norm_f64(gelu(h), *bn_params(mlp.proj_bn), training)
    h = conv1x1_f64(h, mlp.conv2[0].weight.double(),
                    mlp.conv2[0].bias.double())
    h = batch_norm_f64(h, *bn_params(mlp.conv2[1]), training)
    tokens = dropout(h.flatten(2).permute(0, 2, 1))
    return tokens.permute(0, 2, 1).reshape(h.shape)


@pytest.mark.parametrize('training', [False, True])
def test_cfm_against_float64_transcription(training):
    torch.manual_seed(1)
    module = ChannelFusion(8, reduction=2)
    for bn in (module.coord_attention.bn1, module.mlp.conv1[2],
               module.mlp.proj_bn, module.mlp.conv2[1]):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
    module.double().train(training)
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    expected = cfm_f64(module, x, training, seed=4)
    # The same masks: the global generator seeded alike.
    torch.manual_seed(4)
    torch.testing.assert_close(module(x), expected, rtol=1e-10, atol=1e-10)
    # No residual around the MLP: a zeroed output BN zeroes the output.
    module.mlp.conv2[1].weight.data.zero_()
    module.mlp.conv2[1].bias.data.zero_()
    assert module(x).abs().max() == 0


def small_neck(**kwargs):
    return DAHNetNeck(in_channels=16, out_channels=16,
                      refiner_block='BasicBlock', **kwargs)


def test_neck_feeds_each_part_through_its_own_calls():
    torch.manual_seed(0)
    neck = small_neck().eval()
    feat = torch.rand(2, 16, 4, 4)
    out = neck(feat)
    assert out.shape == (2, 4, 16)
    boosts, current = [], feat
    for _ in range(3):
        boost, current = neck.enhance_suppress(current)
        boosts.append(boost)
    parts = cross_map_mixing([neck.part_transition(b) for b in boosts])
    expected = [neck.global_refiner(feat).mean((2, 3))] + [
        neck.local_refiner(p).mean((2, 3)) for p in parts
    ]
    torch.testing.assert_close(out, torch.stack(expected, 1))
    maps = neck.attention_maps(feat)
    assert maps.shape == (2, 3, 4, 4)
    torch.testing.assert_close(maps.sum((2, 3)), torch.ones(2, 3))


def test_pretrained_layer4_lands_where_the_reference_puts_it(tmp_path):
    """Block j of the checkpoint's stage, marked with the value j + 1:
    all into the global copy, 0 into the transition, 1 and 2 around the
    CFM (which stays random)."""
    reference = small_neck(num_refiner_blocks=3)
    stage = {}
    for j in range(3):
        block = reference.global_refiner[j]
        for key, value in block.state_dict().items():
            stage[f'layer4.{j}.{key}'] = torch.full_like(value, j + 1)
    path = str(tmp_path / 'stage.pth')
    torch.save(stage, path)
    neck = small_neck(num_refiner_blocks=3, init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='layer4.'))
    neck.init_weights()
    for module, index, mark in [(neck.global_refiner, 0, 1),
                                (neck.global_refiner, 2, 3),
                                (neck.part_transition, 0, 1),
                                (neck.local_refiner, 0, 2),
                                (neck.local_refiner, 2, 3)]:
        assert (module[index].conv1.weight == mark).all()
    cfm = neck.local_refiner[1].mlp.conv1[0].weight
    assert not ((cfm == 1) | (cfm == 2) | (cfm == 3)).all()
    bad = small_neck(init_cfg=dict(type='Pretrained', checkpoint=path,
                                   prefix='layer3.'))
    with pytest.raises(ValueError, match="model.neck.init_cfg: .* no keys "
                       "starting with 'layer3.'"):
        bad.init_weights()


def test_head_hands_logits_to_training_only():
    init_default_scope('mmqueryopt')
    head = MODELS.build(dict(type='DAHNetHashHead', code_length=12,
                             num_classes=5, in_channels=8))
    feats = torch.randn(3, 4, 8)
    out = head.train()(feats)
    assert sorted(out) == ['global_logits', 'part_logits', 'relaxed_codes']
    torch.testing.assert_close(out['global_logits'], head.cls(feats[:, 0]))
    for i in range(3):
        torch.testing.assert_close(out['part_logits'][:, i],
                                   head.part_cls(feats[:, i + 1]))
    codes = head.eval()(feats)
    torch.testing.assert_close(codes, out['relaxed_codes'])


@pytest.mark.parametrize('cfg, match', [
    (dict(code_length=10), r'model.head.code_length=10'),
    (dict(code_length=12, num_classes=0), r'model.head.num_classes'),
])
def test_bad_head_settings_name_the_key(cfg, match):
    init_default_scope('mmqueryopt')
    cfg = dict(dict(type='DAHNetHashHead', num_classes=3), **cfg)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)
