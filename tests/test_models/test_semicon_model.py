"""SEMICON's parts: parameter counts from the facts file, the channel
transformer and the suppression-enhancing masks against float64
recomputations written independently here, the stepwise neck, the code
split, batch (reference) and per-image mask statistics, which layer4
blocks start from the checkpoint, bad code lengths."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from mmqueryopt.models.heads.global_local_hash_head import global_local_split
from mmqueryopt.models.layers.channel_transformer import ChannelTransformer
from mmqueryopt.models.necks.suppression_enhancing_neck import \
    SuppressionEnhancingNeck
from mmqueryopt.registry import MODELS

# baselines_facts.md, SEMICON: trainable parameters (all train).
FACTS_PARAMS = {12: 42_393_670, 24: 42_418_246, 32: 42_434_630,
                48: 42_467_398}


def model_cfg(bits=12):
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/semicon/semicon_cub_{bits}bit.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.init_cfg = None
    return cfg.model


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    init_default_scope('mmqueryopt')
    cfg = model_cfg(bits)
    assert not cfg.get('frozen_modules')
    backbone = MODELS.build(cfg.backbone)
    # Neck and head on the meta device: sizes without the memory.
    with torch.device('meta'):
        neck, head = MODELS.build(cfg.neck), MODELS.build(cfg.head)

    def count(module):
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    assert count(backbone) + count(neck) + count(head) == FACTS_PARAMS[bits]
    # Facts: backbone 8,543,296, each refiner 16,177,152 (layer4
    # 14,964,736 + 2 CTs of 606,208), tower + heads 1,471,494, W 2048k.
    assert count(backbone) == 8_543_296
    assert count(neck.global_refiner) == 16_177_152
    assert count(neck.local_refiner) == 16_177_152
    assert count(neck.global_refiner[2]) == 606_208
    assert count(neck.attention_tower) + count(neck.mask_heads) == 1_471_494
    assert count(head) == 2048 * bits


def signed_sqrt(a):
    return a.sign() * (a.abs() + 1e-5).sqrt()


def channel_transformer_f64(x, heads, w1, b1, bn, w2, b2, training):
    """SEMICON's ICT by index arithmetic: channel h*d + i is head h's
    i-th channel; stage 2 works on the channels reordered to i*heads + h."""
    batch, channels, height, width = x.shape
    d = channels // heads
    n = height * width
    out = F.conv2d(x, w1, b1, groups=heads).reshape(batch, 3 * channels, n)
    q, k, v = (out[:, s * channels:(s + 1) * channels].reshape(
        batch, heads, d, n) for s in range(3))
    attn = signed_sqrt(torch.einsum('bhin,bhjn->bhij', q, k) / d**0.5)
    mixed = torch.einsum('bhij,bhjn->bhin', attn.softmax(-1), v).reshape(
        batch, channels, n) + x.reshape(batch, channels, n)
    # Channel i*heads + h of the reordered map is channel h*d + i.
    order = torch.tensor([h * d + i for i in range(d) for h in range(heads)])
    mixed = mixed[:, order].reshape(batch, channels, height, width)
    normed = F.relu(F.batch_norm(mixed, *bn, training=training, eps=1e-5))
    out = F.conv2d(normed, w2, b2, groups=d).reshape(batch, 3 * channels, n)
    q, k, v = (out[:, s * channels:(s + 1) * channels].reshape(
        batch, d, heads, n) for s in range(3))
    attn = signed_sqrt(torch.einsum('bihn,bign->bihg', q, k) / heads**0.5)
    across = torch.einsum('bihg,bign->bihn', attn.softmax(-1), v).reshape(
        batch, channels, n)
    back = torch.argsort(order)
    return across[:, back].reshape(x.shape) + normed


@pytest.mark.parametrize('training', [False, True])
def test_channel_transformer_against_index_arithmetic(training):
    torch.manual_seed(0)
    ct = ChannelTransformer(48, num_heads=8).double()
    for p in ct.parameters():
        p.data.normal_(0, 0.3)
    ct.norm.running_mean.normal_()
    ct.norm.running_var.uniform_(0.5, 1.5)
    bn = (ct.norm.running_mean.clone(), ct.norm.running_var.clone(),
          ct.norm.weight.detach(), ct.norm.bias.detach())
    x = torch.randn(3, 48, 3, 5, dtype=torch.float64)
    ct.train(training)
    expected = channel_transformer_f64(
        x, 8, ct.channel_qkv.weight.detach(), ct.channel_qkv.bias.detach(),
        bn, ct.head_qkv.weight.detach(), ct.head_qkv.bias.detach(), training)
    with torch.no_grad():
        torch.testing.assert_close(ct(x), expected, rtol=1e-10, atol=1e-10)
    assert ChannelTransformer(2048).num_heads == 32  # max(2048 // 64, 16)
    assert ChannelTransformer(64).num_heads == 16
    with pytest.raises(ValueError, match='100 channels do not split into 16'):
        ChannelTransformer(100)


def test_mask_against_hand_computation():
    """softmax over positions, (a - mean) / std^0.15 + 1 with mean and
    (unbiased) std over the whole batch, or over each image; clip [0, 2]."""
    torch.manual_seed(1)
    maps = torch.randn(3, 1, 2, 3, dtype=torch.float64) * 3
    probs = [[(m.exp() / m.exp().sum()).flatten().tolist()]
             for m in maps[:, 0]]
    values = [v for image in probs for v in image[0]]
    mean = sum(values) / len(values)
    std = (sum((v - mean)**2 for v in values) / (len(values) - 1))**0.5
    batch_expected = torch.tensor(
        [[min(max((v - mean) / std**0.15 + 1, 0), 2) for v in image[0]]
         for image in probs], dtype=torch.float64).reshape(3, 1, 2, 3)
    neck = SuppressionEnhancingNeck(in_channels=64, out_channels=16,
                                    refiner_block='BasicBlock')
    torch.testing.assert_close(neck.mask(maps), batch_expected)
    image_expected = []
    for image in probs:
        m = sum(image[0]) / 6
        s = (sum((v - m)**2 for v in image[0]) / 5)**0.5
        image_expected.append(
            [min(max((v - m) / s**0.15 + 1, 0), 2) for v in image[0]])
    neck.mask_statistics = 'image'
    torch.testing.assert_close(
        neck.mask(maps),
        torch.tensor(image_expected, dtype=torch.float64).reshape(3, 1, 2, 3))
    # A peak among 196 positions: (1 - 1/196) / 0.07^0.15 + 1 > 2, clipped.
    peaked = torch.zeros(2, 1, 14, 14)
    peaked[:, 0, 3, 4] = 50.0
    for statistics in ('batch', 'image'):
        neck.mask_statistics = statistics
        mask = neck.mask(peaked)
        assert mask[:, 0, 3, 4].tolist() == [2.0, 2.0]
        assert 0 < mask.min() < 1
        # A constant map has std 0 (the reference: NaN): mask 1.
        torch.testing.assert_close(neck.mask(torch.zeros(2, 1, 3, 3)),
                                   torch.ones(2, 1, 3, 3))
    with pytest.raises(ValueError, match="mask_statistics must be one of"):
        SuppressionEnhancingNeck(mask_statistics='batchwise')


@pytest.fixture(scope='module')
def small_neck():
    torch.manual_seed(2)
    neck = SuppressionEnhancingNeck(
        in_channels=64, out_channels=32, refiner_block='BasicBlock',
        num_refiner_blocks=3, num_heads=8)
    neck.init_weights()
    return neck


@pytest.mark.parametrize('training', [False, True])
def test_neck_finds_parts_stepwise_and_refines_each_alone(small_neck,
                                                          training):
    neck = small_neck.train(training)
    feat = torch.randn(4, 64, 6, 6)
    # Layout: [block (stride 2), block, CT, block, CT].
    kinds = [type(m).__name__ for m in neck.local_refiner]
    assert kinds == ['BasicBlock', 'BasicBlock', 'ChannelTransformer',
                     'BasicBlock', 'ChannelTransformer']
    with torch.no_grad():
        x = neck.attention_tower(feat)
        assert x.shape == (4, 4, 6, 6)
        f1 = neck.mask_heads[0](x)
        x = x * (2 - neck.mask(f1))
        f2 = neck.mask_heads[1](x)
        x = x * (2 - neck.mask(f2))
        f3 = neck.mask_heads[2](x)
        torch.testing.assert_close(neck.part_maps(feat),
                                   torch.cat([f1, f2, f3], 1))
        expected = [neck.global_refiner(feat).mean((2, 3))] + [
            neck.local_refiner(f * feat).mean((2, 3)) for f in (f1, f2, f3)]
        out = neck((feat, ))
    assert out.shape == (4, 4, 32)
    torch.testing.assert_close(out, torch.stack(expected, 1))
    with pytest.raises(ValueError, match='64-channel maps'):
        neck(torch.zeros(1, 32, 6, 6))


def test_attention_maps_are_normalised_part_maps(small_neck):
    neck = small_neck.eval()
    feat = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        maps = neck.attention_maps(feat)
        raw = neck.part_maps(feat)
    assert maps.shape == (2, 3, 5, 5)
    torch.testing.assert_close(maps.sum((2, 3)), torch.ones(2, 3))
    live = raw.sum((2, 3)) > 0
    torch.testing.assert_close(maps[live], (raw / raw.sum(
        (2, 3), keepdim=True))[live])


def test_batch_statistics_tie_an_image_to_its_batch_and_per_image_do_not(
        small_neck):
    """Default (the reference): eval features of an image change with its
    batch-mates, and equal masks from the whole batch's statistics;
    'image': an image's features are its own."""
    # float64: float32 rounding, which differs with the batch size, is
    # amplified by the signed square roots near 0.
    neck = small_neck.double().eval()
    torch.manual_seed(3)
    feats = torch.randn(6, 64, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        neck.mask_statistics = 'batch'
        together = neck(feats)
        alone = torch.cat([neck(feats[i:i + 1]) for i in range(6)])
        neck.mask_statistics = 'image'
        per_image = neck(feats)
        per_image_alone = torch.cat(
            [neck(feats[i:i + 1]) for i in range(6)])
        shuffled = neck(feats.flip(0)).flip(0)
    neck.mask_statistics = 'batch'
    neck.float()
    assert (together - alone).abs().max() > 1e-4
    torch.testing.assert_close(per_image, per_image_alone)
    torch.testing.assert_close(per_image, shuffled)
    # One image alone: its batch is itself, so both statistics agree.
    torch.testing.assert_close(alone, per_image_alone)


@pytest.mark.parametrize('bits,split', [
    (12, (6, 2)), (24, (12, 4)), (32, (17, 5)), (48, (24, 8)),
    (16, (10, 2)), (64, (34, 10)), (6, (3, 1)), (36, (18, 6))])
def test_code_split_of_the_reference(bits, split):
    assert global_local_split(bits) == split
    assert split[0] + 3 * split[1] == bits


@pytest.mark.parametrize('bits', [4, 8, 20, 33])
def test_code_lengths_the_split_cannot_serve(bits):
    init_default_scope('mmqueryopt')
    with pytest.raises(ValueError,
                       match=f'model.head.code_length={bits}: .*use a '
                       'multiple of 6'):
        MODELS.build(dict(type='GlobalLocalHashHead', code_length=bits))


def test_head_codes_are_tanh_of_the_split_linear_maps():
    init_default_scope('mmqueryopt')
    head = MODELS.build(dict(type='GlobalLocalHashHead', code_length=32,
                             in_channels=8))
    assert head.global_weight.shape == (17, 8)
    assert [w.shape for w in head.local_weights] == [(5, 8)] * 3
    # Kaiming uniform a = sqrt(5): U(-1/sqrt(d), 1/sqrt(d)).
    assert head.global_weight.abs().max() <= 8**-0.5
    feats = torch.randn(2, 4, 8, dtype=torch.float64)
    weights = [head.global_weight] + list(head.local_weights)
    expected = torch.tanh(torch.cat([
        feats[:, i] @ w.detach().double().T for i, w in enumerate(weights)
    ], 1))
    head.double()
    for training in (True, False):
        head.train(training)
        torch.testing.assert_close(head(feats), expected)
    with pytest.raises(ValueError, match=r'expects \(B, 4, 8\)'):
        head(torch.zeros(2, 32))


def _layer4_checkpoint(path, neck):
    """A ResNet layer4 state dict (3 blocks) with marked values."""
    generator = torch.Generator().manual_seed(5)
    blocks = [m for m in neck.local_refiner
              if not isinstance(m, ChannelTransformer)]
    state = {
        f'layer4.{j}.{key}': torch.rand(value.shape, generator=generator) + 2
        if value.is_floating_point() else value
        for j, block in enumerate(blocks)
        for key, value in block.state_dict().items()
    }
    torch.save(dict(state, **{'fc.weight': torch.zeros(2, 2)}), path)
    return state


@pytest.mark.parametrize('third', [False, True])
def test_pretrained_layer4_lands_where_the_reference_puts_it(tmp_path, third):
    """Default: layer4.0 / layer4.1 into indices 0 / 1; the third
    bottleneck (index 3) and the CTs stay at their init, as the reference's
    strict=False load leaves them. load_third_block: layer4.2 -> index 3."""
    torch.manual_seed(6)
    neck = SuppressionEnhancingNeck(
        in_channels=64, out_channels=32, refiner_block='BasicBlock',
        num_heads=8, load_third_block=third)
    path = str(tmp_path / 'r50.pth')
    state = _layer4_checkpoint(path, neck)
    neck.init_cfg = dict(type='Pretrained', checkpoint=path, prefix='layer4.')
    neck.init_weights()
    assert neck.pretrained_positions() == (
        {0: 0, 1: 1, 2: 3} if third else {0: 0, 1: 1})
    for name in ('global_refiner', 'local_refiner'):
        refiner = getattr(neck, name)
        for j, index in ((0, 0), (1, 1), (2, 3)):
            for key, value in refiner[index].state_dict().items():
                if not value.is_floating_point():
                    continue
                loaded = torch.equal(value, state[f'layer4.{j}.{key}'])
                assert loaded == (index != 3 or third), (name, index, key)
        # Kaiming-initialised CTs, BN 1/0: nothing marked (values >= 2).
        for index in (2, 4):
            assert refiner[index].channel_qkv.weight.abs().min() < 2
            assert torch.equal(refiner[index].norm.weight, torch.ones(32))
    torch.save({'layer4.0.conv1.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='lacks the ResNet blocks'):
        neck.init_weights()


def test_pretrained_config_errors_name_the_key(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save({'conv1.weight': torch.zeros(1)}, path)
    neck = SuppressionEnhancingNeck(in_channels=64, out_channels=32,
                                    refiner_block='BasicBlock', num_heads=8)
    neck.init_cfg = dict(type='Pretrained', checkpoint=path, prefix='layer4.')
    with pytest.raises(ValueError, match="model.neck.init_cfg: .* no keys "
                       "starting with 'layer4.'"):
        neck.init_weights()
    neck.init_cfg = dict(type='Normal', std=0.01)
    with pytest.raises(ValueError, match='model.neck.init_cfg must be None'):
        neck.init_weights()


def test_maps_as_distributions_keeps_zeroed_maps_uniform():
    from mmqueryopt.models.layers.map_distributions import \
        maps_as_distributions
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0] = torch.tensor([[1.0, 3.0], [0.0, 4.0]])
    expected = torch.stack([maps[0, 0] / 8, torch.full((2, 2), 0.25)])
    torch.testing.assert_close(maps_as_distributions(maps), expected[None])
