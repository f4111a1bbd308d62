"""SEMICON's converter rules on the reference's key list
(tests/data/semicon_state_dict_12bit.txt): every key converts and loads
into the CUB 12-bit config's model, which then computes what a float64
transcription of the reference's forward computes from the reference's own
keys, in eval and train mode; the tool run as a user runs it; checkpoints of
another method or code length are refused."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.converters import METHODS, detect_method
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict
from test_semicon_model import channel_transformer_f64

DATABASE_BUFFERS = {'database.codes', 'database.sampled_codes',
                    'database.labels'}


def build(bits=12):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/semicon/semicon_cub_{bits}bit.py')).model
    cfg.backbone.init_cfg = None
    cfg.neck.init_cfg = None
    return MODELS.build(cfg)


class ReferenceForward:
    """models/SEMICON.py's forward in float64 on the reference's keys."""

    def __init__(self, state, training):
        self.s = {k: v.double() if v.is_floating_point() else v
                  for k, v in state.items()}
        self.training = training

    def bn(self, x, p):
        s = self.s
        return F.batch_norm(x, s[p + 'running_mean'].clone(),
                            s[p + 'running_var'].clone(), s[p + 'weight'],
                            s[p + 'bias'], self.training, 0.1, 1e-5)

    def conv(self, x, key, stride=1, padding=0):
        return F.conv2d(x, self.s[key], stride=stride, padding=padding)

    def bottleneck(self, x, p, stride=1):
        out = F.relu(self.bn(self.conv(x, p + 'conv1.weight'), p + 'bn1.'))
        out = F.relu(self.bn(self.conv(out, p + 'conv2.weight', stride, 1),
                             p + 'bn2.'))
        out = self.bn(self.conv(out, p + 'conv3.weight'), p + 'bn3.')
        if p + 'downsample.0.weight' in self.s:
            x = self.bn(self.conv(x, p + 'downsample.0.weight', stride),
                        p + 'downsample.1.')
        return F.relu(out + x)

    def conv_bn(self, x, p):
        return self.bn(self.conv(x, p + '0.weight'), p + '1.')

    def ct(self, x, p):
        s = self.s
        bn = (s[p + 'norm.running_mean'].clone(),
              s[p + 'norm.running_var'].clone(), s[p + 'norm.weight'],
              s[p + 'norm.bias'])
        return channel_transformer_f64(
            x, 32, s[p + 'qkv.weight'], s[p + 'qkv.bias'], bn,
            s[p + 'qkv2.weight'], s[p + 'qkv2.bias'], self.training)

    def refine(self, x, p):
        x = self.bottleneck(x, p + '0.', stride=2)
        x = self.bottleneck(x, p + '1.')
        x = self.ct(x, p + '2.')
        x = self.bottleneck(x, p + '3.')
        return self.ct(x, p + '4.').mean((2, 3))

    def mask(self, feature):
        probs = feature.flatten(1).softmax(1)
        mean = probs.mean()
        std = ((probs - mean)**2).sum().div(probs.numel() - 1).sqrt()
        return ((probs - mean) / std**0.15 + 1).clamp(0, 2).reshape(
            feature.shape)

    def __call__(self, images):
        x = F.relu(self.bn(self.conv(images, 'backbone.conv1.weight', 2, 3),
                           'backbone.bn1.'))
        x = F.max_pool2d(x, 3, 2, 1)
        for layer, blocks in ((1, 3), (2, 4), (3, 6)):
            for b in range(blocks):
                x = self.bottleneck(x, f'backbone.layer{layer}.{b}.',
                                    2 if b == 0 and layer > 1 else 1)
        t = x
        a = self.bottleneck(t, 'attention.layer4.0.')
        a = self.conv_bn(a, 'attention.layer4.1.')
        a = self.bottleneck(a, 'attention.layer4.2.')
        a = self.conv_bn(a, 'attention.layer4.3.')
        a = self.bottleneck(a, 'attention.layer4.4.')
        maps = []
        for i in (1, 2, 3):
            maps.append(F.relu(self.conv_bn(a, f'attention.feature{i}.')))
            a = a * (2 - self.mask(maps[-1]))
        logits = [self.refine(t, 'refine_global.layer4.') @ self.s['W_G'].T]
        for i, m in enumerate(maps, 1):
            logits.append(self.refine(m * t, 'refine_local.layer4.')
                          @ self.s[f'W_L{i}'].T)
        return torch.tanh(torch.cat(logits, 1))


def test_every_reference_key_converts_and_loads():
    reference = reference_state_dict('semicon')
    assert len(reference) == 502 == len(key_list('semicon'))
    assert detect_method(reference) == 'semicon'
    converted = convert_state_dict(reference)
    assert len(converted) == 502
    model = build(12)
    result = model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == DATABASE_BUFFERS
    ours = model.state_dict()
    for key, value in zip(converted, reference.values()):
        assert torch.equal(ours[key], value), key
    pairs = {
        'W_G': 'head.global_weight',
        'W_L3': 'head.local_weights.2',
        'attention.feature2.1.running_var': 'neck.mask_heads.1.1.running_var',
        'attention.layer4.3.0.weight': 'neck.attention_tower.3.0.weight',
        'refine_local.layer4.4.qkv2.bias': 'neck.local_refiner.4.head_qkv.bias',
        'refine_global.layer4.2.qkv.weight':
        'neck.global_refiner.2.channel_qkv.weight',
        'refine_global.layer4.3.bn3.bias': 'neck.global_refiner.3.bn3.bias',
        'backbone.layer3.5.conv3.weight': 'backbone.layer3.5.conv3.weight',
    }
    for theirs, name in pairs.items():
        assert torch.equal(ours[name], reference[theirs]), theirs
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == 42_393_670
    # The bits are the rows of the four split weights together.
    assert sum(converted[key].size(0)
               for key in METHODS['semicon'].CODE_LENGTH_KEYS) == 12


@pytest.mark.parametrize('training', [False, True])
def test_converted_model_computes_the_reference_codes(training):
    reference = reference_state_dict('semicon', seed=1)
    model = build(12)
    model.load_state_dict(convert_state_dict(reference), strict=False)
    model.double().train(training)
    images = torch.randn(3, 3, 64, 64, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model(images, mode='tensor')
    expected = ReferenceForward(reference, training)(images)
    assert ours.shape == (3, 12)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)
    # Codes far from 0, so equal values mean equal signs meaningfully.
    assert expected.abs().min() > 1e-4


def test_convert_tool_in_a_subprocess(tmp_path):
    from mmengine.runner import load_checkpoint
    reference = reference_state_dict('semicon')
    src, dst = str(tmp_path / 'model.pkl'), str(tmp_path / 'converted.pth')
    torch.save(reference, src)
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_official_ckpt.py'),
         src, dst], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert 'converted 502 tensors' in result.stdout
    assert '(12-bit, semicon) to ' in result.stdout
    assert 'Traceback' not in result.stderr
    model = build(12)
    load_checkpoint(model, dst, strict=False, logger='silent')
    loaded = model.state_dict()
    assert torch.equal(loaded['head.local_weights.0'], reference['W_L1'])
    assert torch.equal(loaded['neck.local_refiner.4.norm.running_var'],
                       reference['refine_local.layer4.4.norm.running_var'])
    # Told it is A2-Net's, the file is refused by a key of its own.
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_official_ckpt.py'),
         src, dst, '--method', 'a2net'], capture_output=True, text=True,
        cwd=REPO)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert "no rule for the key 'W_G'" in result.stderr


def test_refuses_another_code_length_or_method():
    converted = convert_state_dict(reference_state_dict('semicon'))
    with pytest.raises(ValueError, match=r'head.global_weight: checkpoint '
                       r'\(6, 2048\), model \(12, 2048\)'):
        build(24).load_state_dict(converted, strict=False)
    a2net = convert_state_dict(reference_state_dict('a2net'), 'a2net')
    with pytest.raises(ValueError, match="another method's neck or head"):
        build(12).load_state_dict(a2net, strict=False)
