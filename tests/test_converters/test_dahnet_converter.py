"""DAHNet's converter rules on the reference's key list
(tests/data/dahnet_state_dict_12bit.txt): every key converts and loads into
the CUB 12-bit config's model, which then computes what a float64
transcription of the reference's forward computes from the reference's own
keys, in eval and train mode (the train-mode dropout masks drawn as the
reference draws them); the tool run as a user runs it; checkpoints of
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
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict
from test_semicon_converter import ReferenceForward

DATABASE_BUFFERS = {'database.codes', 'database.sampled_codes',
                    'database.labels'}


def build(bits=12):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/dahnet/dahnet_cub_{bits}bit.py')).model
    cfg.backbone.init_cfg = None
    cfg.neck.init_cfg = None
    return MODELS.build(cfg)


class DAHNetReferenceForward(ReferenceForward):
    """models/DAHNET.py's forward in float64 on the reference's keys; the
    dropouts draw from the global generator in the reference's order."""

    def conv_b(self, x, key, **kwargs):
        return F.conv2d(x, self.s[key + 'weight'], self.s[key + 'bias'],
                        **kwargs)

    def fesm(self, x):
        height, width = x.shape[2:]

        def weights(name, stripes, dim):
            scores = torch.cat([
                F.relu(self.bn(self.conv_b(s, f'attention.{name}.0.'),
                               f'attention.{name}.1.')).mean((2, 3), True)
                for s in stripes
            ], dim)
            return scores.softmax(dim).repeat_interleave(
                x.size(dim) // 2, dim)

        w = (weights('stripconv', x.split(height // 2, 2), 2) *
             weights('stripconv_h', x.split(width // 2, 3), 3))
        boost = x + 0.5 * (x * w)
        peak = torch.stack([m.max() for m in w]).reshape(-1, 1, 1, 1)
        return boost, x * (w < peak * 0.95).double().clamp(min=0.5)

    def mcm(self, high, low):
        cos = (high * low).sum(1) / (high.norm(dim=1) * low.norm(dim=1))
        s = cos.flatten(1).softmax(1)
        rest = (1 - s).softmax(1)
        return s.reshape(high[:, :1].shape), rest.reshape(high[:, :1].shape)

    def cfm(self, x, p):
        a = p + 'channel_att.'
        y = x.mean(3, keepdim=True) * x.mean(2, keepdim=True)
        y = self.bn(self.conv_b(y, a + 'conv1.'), a + 'bn1.')
        y = y * (F.relu6(y + 3) / 6)
        x = x + x * self.conv_b(y, a + 'conv2.').sigmoid()
        m = p + 'mlp.'
        h = self.bn(F.gelu(self.conv_b(x, m + 'conv1.0.')), m + 'conv1.2.')
        h = self.dropout(h)
        h = self.conv_b(h, m + 'proj.', padding=1, groups=h.size(1)) + h
        h = self.bn(F.gelu(h), m + 'proj_bn.')
        h = self.bn(self.conv_b(h, m + 'conv2.0.'), m + 'conv2.1.')
        tokens = self.dropout(h.flatten(2).permute(0, 2, 1))
        return tokens.permute(0, 2, 1).reshape(h.shape)

    def dropout(self, t):
        # The mask as the float32 model draws it: on a float32 tensor of
        # t's layout.
        mask = F.dropout(torch.ones_like(t, dtype=torch.float32), 0.1,
                         self.training)
        return t * mask.double()

    def refine_local(self, x):
        x = self.bottleneck(x, 'refine_local.layer4.0.')
        x = self.cfm(x, 'refine_local.layer4.1.channel_mixer.')
        return self.bottleneck(x, 'refine_local.layer4.2.').mean((2, 3))

    def __call__(self, images):
        x = F.relu(self.bn(self.conv(images, 'backbone.conv1.weight', 2, 3),
                           'backbone.bn1.'))
        x = F.max_pool2d(x, 3, 2, 1)
        for layer, blocks in ((1, 3), (2, 4), (3, 6)):
            for b in range(blocks):
                x = self.bottleneck(x, f'backbone.layer{layer}.{b}.',
                                    2 if b == 0 and layer > 1 else 1)
        g = x
        for b in range(3):
            g = self.bottleneck(g, f'refine_global.layer4.{b}.',
                                2 if b == 0 else 1)
        boost1, sup1 = self.fesm(x)
        boost2, sup2 = self.fesm(sup1)
        boost3, _ = self.fesm(sup2)
        o1, o2, o3 = (self.bottleneck(b, 'trans.layer4.0.', 2)
                      for b in (boost1, boost2, boost3))
        s21, r21 = self.mcm(o2, o1)
        s32, r32 = self.mcm(o3, o2)
        parts = [o1 + o2 * r21, o2 + 0.5 * (o1 * s21 + o3 * r32),
                 o3 + o2 * s32]
        logits = [g.mean((2, 3)) @ self.s['W_G'].T]
        for i, part in enumerate(parts, 1):
            logits.append(self.refine_local(part) @ self.s[f'W_L{i}'].T)
        return torch.tanh(torch.cat(logits, 1))


def test_every_reference_key_converts_and_loads():
    reference = reference_state_dict('dahnet')
    assert len(reference) == 430 == len(key_list('dahnet'))
    converted = convert_state_dict(reference, 'dahnet')
    assert len(converted) == 430
    model = build(12)
    result = model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == DATABASE_BUFFERS
    ours = model.state_dict()
    pairs = {
        'W_G': 'head.global_weight',
        'W_L2': 'head.local_weights.1',
        'cls.bias': 'head.cls.bias',
        'cls_loc.weight': 'head.part_cls.weight',
        'attention.stripconv.0.bias':
        'neck.enhance_suppress.row_scorer.0.bias',
        'attention.stripconv_h.1.running_var':
        'neck.enhance_suppress.col_scorer.1.running_var',
        'trans.layer4.0.downsample.0.weight':
        'neck.part_transition.0.downsample.0.weight',
        'refine_global.layer4.2.bn3.weight':
        'neck.global_refiner.2.bn3.weight',
        'refine_local.layer4.1.channel_mixer.channel_att.bn1.bias':
        'neck.local_refiner.1.coord_attention.bn1.bias',
        'refine_local.layer4.1.channel_mixer.mlp.proj.weight':
        'neck.local_refiner.1.mlp.proj.weight',
        'refine_local.layer4.2.conv2.weight':
        'neck.local_refiner.2.conv2.weight',
        'backbone.layer3.5.conv3.weight': 'backbone.layer3.5.conv3.weight',
    }
    for theirs, name in pairs.items():
        assert torch.equal(ours[name], reference[theirs]), theirs
    for key, value in converted.items():
        assert torch.equal(ours[key], value), key
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == 66_683_862


@pytest.mark.parametrize('training', [False, True])
def test_converted_model_computes_the_reference_codes(training):
    """At 64 x 64 (layer3 4 x 4, parts 2 x 2); the reference's CFM runs
    only at 7 x 7 (its hard-coded reshape), ours takes the map's size. The
    model in float32 (float64's depthwise conv takes a slow path per
    channel), the transcription in float64."""
    reference = reference_state_dict('dahnet', seed=1)
    model = build(12)
    model.load_state_dict(convert_state_dict(reference, 'dahnet'),
                          strict=False)
    model.train(training)
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    expected = DAHNetReferenceForward(reference, training)(images)
    torch.manual_seed(3)
    with torch.no_grad():
        ours = model(images.float(), mode='tensor')
    assert ours.shape == (2, 12)
    # Training normalises the parts' 2 x 2 maps over 8 values, which
    # magnifies float32's rounding.
    torch.testing.assert_close(ours.double(), expected, rtol=0,
                               atol=1e-3 if training else 1e-5)
    # Codes far from 0, so the signs (the codes) are equal.
    assert expected.abs().min() > 2e-3
    assert torch.equal(ours.sign().double(), expected.sign())


def test_convert_tool_in_a_subprocess(tmp_path):
    reference = reference_state_dict('dahnet')
    src, dst = str(tmp_path / 'model.pkl'), str(tmp_path / 'converted.pth')
    torch.save(reference, src)
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_official_ckpt.py'),
         src, dst, '--method', 'dahnet'], capture_output=True, text=True,
        cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert 'converted 430 tensors' in result.stdout
    assert 'Traceback' not in result.stderr
    loaded = torch.load(dst, map_location='cpu')['state_dict']
    assert loaded.keys() == convert_state_dict(reference, 'dahnet').keys()
    assert torch.equal(loaded['head.part_cls.bias'], reference['cls_loc.bias'])
    # Told it is SEMICON's, the keys are refused by one of DAHNet's own.
    with pytest.raises(KeyError, match="no rule for the key 'attention"):
        convert_state_dict(reference, 'semicon')


def test_refuses_another_code_length_or_method():
    converted = convert_state_dict(reference_state_dict('dahnet'), 'dahnet')
    with pytest.raises(ValueError, match=r'head.global_weight: checkpoint '
                       r'\(6, 2048\), model \(12, 2048\)'):
        build(24).load_state_dict(converted, strict=False)
    semicon = convert_state_dict(reference_state_dict('semicon'), 'semicon')
    with pytest.raises(ValueError, match="another method's neck or head"):
        build(12).load_state_dict(semicon, strict=False)


def test_every_reference_key_list_tells_its_own_method():
    """SEMICON's and DAHNet's share W_G / W_L1..3 and the layer4 copies with
    A2-Net's and ExchNet's: each signature picks one method."""
    from mmqueryopt.converters import detect_method
    from reference_weights import key_list
    for name in ('a2net', 'adsh', 'dahnet', 'dpsh', 'exchnet', 'fish',
                 'semicon'):
        keys = [key for key, _, _ in key_list(name)]
        assert detect_method(keys) == name
