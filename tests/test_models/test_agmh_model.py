"""AGMH: sizes, codes independent of SIEA, ADL against hand-computed values,
the converter on the authors' key list, and the forward against one written
from the facts file on the authors' key names."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.converters import detect_method
from mmqueryopt.models import ADSHDatabase
from mmqueryopt.models.heads import AGMHHashHead
from mmqueryopt.models.losses import (ADSHLoss, AGMHLoss,
                                      AttentionDispersionLoss)
from mmqueryopt.models.losses.attention_dispersion_loss import (
    attention_dispersion, position_distributions)
from mmqueryopt.models.necks import AttributeDescriptorNeck
from mmqueryopt.registry import MODELS

KEY_LIST = osp.join(REPO, 'tests/data/agmh_state_dict_12bit.txt')
DATABASE = ['database.codes', 'database.labels', 'database.sampled_codes']


def build_model(code_length=12, config='agmh_cub_{}bit.py'):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'agmh', config.format(code_length)))
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def cub_model():
    torch.manual_seed(0)
    return build_model(12)


def small_model():
    """The digits config's AGMH (CIFAR ResNet-18, 6 x 32 descriptors)."""
    return build_model(12, 'agmh_digits_{}bit.py')


# The authors' parameter counts (facts file; 12 bits: QueryOpt Table 4).
@pytest.mark.parametrize('code_length, trainable', [(12, 35_556_416),
                                                    (24, 35_593_280),
                                                    (32, 35_617_856),
                                                    (48, 35_667_008)])
def test_trainable_parameters_match_the_authors(cub_model, code_length,
                                                trainable):
    head = AGMHHashHead(code_length)
    body = sum(p.numel() for name, p in cub_model.named_parameters()
               if p.requires_grad and not name.startswith('head.'))
    assert body + head.hash_weight.numel() == trainable
    if code_length == 12:
        assert sum(p.numel() for p in cub_model.parameters()
                   if p.requires_grad) == trainable
        assert sum(p.numel() for p in cub_model.neck.siea_blocks.parameters()
                   ) == 6 * 951_808


def test_tensor_mode_gives_k_codes_and_skips_siea_at_inference(cub_model):
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 64)
    calls = []
    hooks = [block.register_forward_hook(lambda *args: calls.append(1))
             for block in cub_model.neck.siea_blocks]
    try:
        cub_model.train()
        train_codes = cub_model(images, mode='tensor')
        assert train_codes.shape == (2, 12) and len(calls) == 6
        cub_model.eval()
        calls.clear()
        with torch.no_grad():
            codes = cub_model(images, mode='tensor')
            assert codes.shape == (2, 12) and calls == []
            cub_model.neck.siea_in_eval = True
            with_siea = cub_model(images, mode='tensor')
            assert len(calls) == 6
    finally:
        cub_model.neck.siea_in_eval = False
        for hook in hooks:
            hook.remove()
    assert torch.equal(codes, with_siea)
    # The codes are tanh(H [GAP(F_0); ...; GAP(F_5)]) of the pre-SIEA maps.
    with torch.no_grad():
        base = cub_model.backbone(images)[-1]
        pooled = torch.cat([conv(base).mean((2, 3))
                            for conv in cub_model.neck.descriptor_convs], 1)
        expected = torch.tanh(pooled @ cub_model.head.hash_weight.T)
    torch.testing.assert_close(codes, expected)


def test_training_codes_do_not_depend_on_siea():
    model = small_model()
    model.train()
    images = torch.randn(4, 3, 16, 16)
    before = model.train_outputs(images)
    with torch.no_grad():
        for param in model.neck.siea_blocks.parameters():
            param.normal_()
    after = model.train_outputs(images)
    torch.testing.assert_close(after['relaxed_codes'],
                               before['relaxed_codes'])
    assert not torch.allclose(after['attended_maps'],
                              before['attended_maps'])
    assert before['attended_maps'].shape == (4, 6, 32, 4, 4)


def brute_force_adl(maps):
    """ADL with Python loops and math.exp (facts file's formula)."""
    batch, num = maps.shape[:2]
    dists = []
    for b in range(batch):
        row = []
        for d in range(num):
            peak = maps[b, d].max(dim=0).values.flatten().tolist()
            exps = [math.exp(v) for v in peak]
            row.append([e / sum(exps) for e in exps])
        dists.append(row)
    total = sum(
        sum(p * q for p, q in zip(dists[b][i], dists[b][j]))
        for b in range(batch) for i in range(num) for j in range(i + 1, num))
    return total / (num * (num - 1) / 2 * batch)


def test_adl_hand_computed_values():
    # Identical one-hot maps: every pair's inner product is 1.
    maps = torch.zeros(2, 6, 3, 4, 5, dtype=torch.float64)
    maps[:, :, 1, 2, 3] = 1e4
    assert attention_dispersion(maps).item() == 1.0
    # Uniform maps: 1/N for N = 20 positions.
    uniform = torch.full((2, 6, 3, 4, 5), 0.7, dtype=torch.float64)
    assert attention_dispersion(uniform).item() == pytest.approx(1 / 20,
                                                                  abs=1e-15)
    # One-hot at different positions: no overlap.
    apart = torch.zeros(1, 3, 2, 2, 2, dtype=torch.float64)
    for d in range(3):
        apart[0, d, d % 2, d // 2, d % 2] = 1e4
    assert attention_dispersion(apart).item() == 0.0
    # Two descriptors over two positions, by hand: channel maxima (0, ln 3)
    # and (0, 0) give p = (1/4, 3/4) and q = (1/2, 1/2), <p, q> = 1/2.
    pair = torch.zeros(1, 2, 2, 1, 2, dtype=torch.float64)
    pair[0, 0, 0, 0, 1] = math.log(3)
    pair[0, 0, 1, 0, 1] = -5.0  # the channel maximum, not the mean
    assert attention_dispersion(pair).item() == pytest.approx(0.5, abs=1e-15)
    # Random maps against loops.
    random_maps = torch.randn(3, 4, 5, 3, 3, dtype=torch.float64)
    assert attention_dispersion(random_maps).item() == pytest.approx(
        brute_force_adl(random_maps), abs=1e-14)
    assert AttentionDispersionLoss(0.5)(random_maps).item() == pytest.approx(
        0.5 * brute_force_adl(random_maps), abs=1e-14)


def test_adl_needs_pairs_of_descriptors():
    with pytest.raises(ValueError, match='pairs of descriptors'):
        attention_dispersion(torch.randn(2, 1, 3, 4, 4))
    with pytest.raises(ValueError, match='num_descriptors must be >= 2'):
        AttributeDescriptorNeck(64, 8, num_descriptors=1)


def test_agmh_loss_is_soft_adsh_plus_weighted_adl():
    torch.manual_seed(2)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 1])
    database = torch.sign(torch.randn(7, 12))
    codes = torch.tanh(torch.randn(3, 12))
    maps = torch.randn(3, 6, 4, 2, 2)
    loss = AGMHLoss(adl=dict(type='AttentionDispersionLoss',
                             loss_weight=0.25))
    adsh = ADSHLoss()
    soft = ADSHDatabase(similarity='soft', code_width=12)
    soft.prepare(labels)
    soft.codes.copy_(database)
    batch = torch.tensor([1, 4, 6])
    soft.start_round(0, 40, batch)
    args = (codes, soft.view(batch, labels[batch], torch.float32))
    terms = loss(*args, attended_maps=maps)
    plain = adsh(*args)
    assert set(terms) == {'loss_hash', 'loss_quant', 'loss_adl'}
    torch.testing.assert_close(terms['loss_hash'], plain['loss_hash'])
    torch.testing.assert_close(terms['loss_quant'], plain['loss_quant'])
    assert terms['loss_adl'].item() == pytest.approx(
        0.25 * brute_force_adl(maps.double()), rel=1e-5)
    assert AGMHLoss().adl.loss_weight == 0.5
    with pytest.raises(KeyError, match='attended_maps'):
        loss(*args)
    with pytest.raises(TypeError, match='does not use'):
        loss(*args, attended_maps=maps, features=maps)


def test_attention_maps_are_the_adl_distributions():
    model = small_model()
    model.eval()
    images = torch.randn(2, 3, 16, 16)
    maps = model.attention_maps(images)
    assert maps.shape == (2, 6, 4, 4) and (maps >= 0).all()
    torch.testing.assert_close(maps.sum((2, 3)), torch.ones(2, 6))
    with torch.no_grad():
        neck = model.neck
        attended = neck.attended_maps(
            neck.descriptor_maps(model.backbone(images)))
        peak = attended.amax(2).flatten(2)
    torch.testing.assert_close(maps.flatten(2), peak.softmax(-1))
    before = neck.attention_maps(model.backbone(images), after_siea=False)
    assert not torch.allclose(before, maps)


def test_mismatched_widths_and_missing_siea_are_named():
    head = AGMHHashHead(12, in_channels=32, num_descriptors=6)
    with pytest.raises(ValueError, match='6 x 32'):
        head((torch.randn(2, 6, 16, 4, 4), None))
    with pytest.raises(ValueError, match='6 x 32'):
        head((torch.randn(2, 5, 32, 4, 4), None))
    head.train()
    with pytest.raises(ValueError, match='SIEA outputs'):
        head((torch.randn(2, 6, 32, 4, 4), None))
    neck = AttributeDescriptorNeck(64, 32)
    with pytest.raises(ValueError, match=r'in_channels'):
        neck((torch.randn(2, 128, 4, 4), ))
    with pytest.raises(ValueError, match='positive int'):
        AGMHHashHead(0)


def test_checkpoint_of_another_method_or_code_length_is_refused():
    model = small_model()
    init_default_scope('mmqueryopt')
    other = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_digits_12bit.py'))
    queryopt = MODELS.build(other.model)
    with pytest.raises(ValueError, match="another method"):
        model.load_state_dict(queryopt.state_dict(), strict=False)
    longer = build_model(12, 'agmh_digits_{}bit.py')
    longer.head = AGMHHashHead(24, in_channels=32)
    with pytest.raises(ValueError, match='code_length=24'):
        model.load_state_dict(longer.state_dict(), strict=False)


def official_state_dict(seed=0):
    """Random tensors with exactly the authors' keys, shapes and dtypes."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for line in open(KEY_LIST):
        if line.startswith('#'):
            continue
        key, shape, dtype = line.rstrip('\n').split('\t')
        size = tuple(int(s) for s in shape.strip('()').split(',') if s)
        if dtype == 'torch.int64':
            state[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            state[key] = torch.rand(size, generator=generator) + 0.5
        elif key.endswith(('bn1.weight', 'bn2.weight', 'bn3.weight',
                           '1.weight')) and len(size) == 1:
            state[key] = torch.rand(size, generator=generator) + 0.5
        elif len(size) > 1:
            # Variance-preserving weights: the codes stay off tanh's
            # plateaus and the attention off one-hot.
            fan_in = math.prod(size[1:])
            scale = 0.3 if key == 'hash_map' else 1.0
            state[key] = scale * torch.randn(
                size, generator=generator) / math.sqrt(fan_in)
        else:
            state[key] = 0.05 * torch.randn(size, generator=generator)
    return state


def test_converter_covers_every_official_key(cub_model):
    official = official_state_dict()
    assert len(official) == 457
    assert sum(v.numel() for k, v in official.items()
               if not k.endswith(('running_mean', 'running_var',
                                  'num_batches_tracked'))) == 35_556_416
    assert detect_method(official) == 'agmh'
    converted = convert_state_dict({'state_dict': official})
    assert len(converted) == 457
    result = cub_model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == DATABASE
    for ours, value in zip(converted, official.values()):
        assert torch.equal(cub_model.state_dict()[ours], value)
    longer = dict(official, hash_map=torch.zeros(24, 3072))
    with pytest.raises(ValueError, match='code_length=24'):
        cub_model.load_state_dict(convert_state_dict(longer), strict=False)


def authors_forward(state, images):
    """AGMH's inference and training outputs written from the facts file on
    the authors' keys: torchvision's ResNet-50 with layer4 at stride 1,
    descriptor convs, SIEA, GAP, hash layer. Float64."""
    body = torchvision.models.resnet50()
    body.layer4[0].conv2.stride = (1, 1)
    body.layer4[0].downsample[0].stride = (1, 1)
    body.load_state_dict(
        {k[len('backbone.'):]: v
         for k, v in state.items() if k.startswith('backbone.')},
        strict=False)
    body.double().eval()
    x = body.maxpool(body.relu(body.bn1(body.conv1(images))))
    base = body.layer4(body.layer3(body.layer2(body.layer1(x))))

    def bn(x, prefix):
        return F.batch_norm(x, state[prefix + 'running_mean'],
                            state[prefix + 'running_var'],
                            state[prefix + 'weight'], state[prefix + 'bias'],
                            eps=1e-5)

    pooled, attended = [], []
    for d in range(6):
        pre = f'refine.conv_list.{d}.'
        desc = F.relu(bn(F.conv2d(base, state[pre + '0.weight'],
                                  state[pre + '0.bias']), pre + '1.'))
        pooled.append(desc.mean((2, 3)))
        pre = f'refine.attn_list.{d}.'
        y = F.conv2d(desc, state[pre + 'conv1.weight'],
                     state[pre + 'conv1.bias']).flatten(2)  # (B, C, N)
        queries = [state[pre + f'qry_conv.{h}.weight'][..., 0] @ y
                   for h in range(4)]
        attn = queries[0]
        for h in range(1, 4):
            attn = state[pre + f'alt_conv.{h - 1}.weight'][..., 0] @ \
                torch.cat([attn, queries[h]], 1)
        attn = attn.softmax(-1)
        attn = attn / (1e-9 + attn.sum(1, keepdim=True))
        z = (state[pre + 'linear.weight'][..., 0] @ attn).view_as(desc)
        z = bn(F.conv2d(z, state[pre + 'conv2.0.weight']), pre + 'conv2.1.')
        attended.append(F.relu(z + desc))
    codes = torch.tanh(torch.cat(pooled, 1) @ state['hash_map'].T)
    return codes, torch.stack(attended, 1)


def test_converted_model_computes_the_authors_forward(cub_model):
    official = {
        k: v.double() if v.is_floating_point() else v
        for k, v in official_state_dict(seed=3).items()
    }
    model = cub_model.double()
    try:
        model.load_state_dict(convert_state_dict(official), strict=False)
        model.eval()
        model.neck.siea_in_eval = True
        images = torch.randn(2, 3, 64, 64, dtype=torch.float64)
        with torch.no_grad():
            codes, attended = authors_forward(official, images)
            ours = model.neck(model.backbone(images))
            our_codes = model(images, mode='tensor')
    finally:
        model.neck.siea_in_eval = False
        model.float()
    # Neither saturated nor vanishing, attention neither flat nor one-hot.
    assert 0.1 < codes.abs().max() < 0.99
    assert 0.2 < position_distributions(attended).max() < 0.9
    torch.testing.assert_close(our_codes, codes, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[1], attended, rtol=0, atol=1e-12)
