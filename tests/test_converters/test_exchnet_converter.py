"""ExchNet's converter rules: random tensors with the reference's keys
(tests/data/exchnet_state_dict_12bit.txt) convert, load into the CUB 12-bit
config's model, and give the codes of an independent float64 transcription
of the reference's forward (models/exchnet.py: torchvision-layout ResNet-50
stem..layer3, a stride-1 attention tower to 4 maps, two layer4 copies,
Linear(10240, k) + tanh), in eval and train mode, with and without the
feature exchange."""
import copy
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
from mmqueryopt.converters import code_length, detect_method
from mmqueryopt.models.databases.class_anchor_database import ClassAnchorView
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict

DATABASE_BUFFERS = {'database.codes', 'database.sampled_codes',
                    'database.labels', 'database.class_anchors'}


def build(bits=12):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/exchnet/exchnet_cub_{bits}bit.py')).model
    cfg.backbone.init_cfg = None
    cfg.neck.init_cfg = None
    return MODELS.build(cfg)


# The reference's forward, in float64, from its state dict alone.
def _bn(x, sd, name, train):
    return F.batch_norm(x, sd[f'{name}.running_mean'],
                        sd[f'{name}.running_var'], sd[f'{name}.weight'],
                        sd[f'{name}.bias'], training=train, eps=1e-5)


def _bottleneck(x, sd, name, train, stride=1):
    out = F.relu(_bn(F.conv2d(x, sd[f'{name}.conv1.weight']), sd,
                     f'{name}.bn1', train))
    out = F.relu(_bn(F.conv2d(out, sd[f'{name}.conv2.weight'], stride=stride,
                              padding=1), sd, f'{name}.bn2', train))
    out = _bn(F.conv2d(out, sd[f'{name}.conv3.weight']), sd, f'{name}.bn3',
              train)
    if f'{name}.downsample.0.weight' in sd:
        x = _bn(F.conv2d(x, sd[f'{name}.downsample.0.weight'], stride=stride),
                sd, f'{name}.downsample.1', train)
    return F.relu(out + x)


def _layer(x, sd, name, blocks, train, stride):
    for i in range(blocks):
        x = _bottleneck(x, sd, f'{name}.{i}', train, stride if i == 0 else 1)
    return x


def reference_forward(sd, images, train, anchors=None, labels=None):
    """(codes (B, k), part features (B, 4, 2048)) as models/exchnet.py
    computes them; ``anchors`` (C, 4, 2048) switch the exchange on, its mask
    drawn as the reference draws it (Bernoulli(0.5).sample([B, 4, 1]))."""
    x = F.relu(_bn(F.conv2d(images, sd['backbone.conv1.weight'], stride=2,
                            padding=3), sd, 'backbone.bn1', train))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, blocks in ((1, 3), (2, 4), (3, 6)):
        x = _layer(x, sd, f'backbone.layer{stage}', blocks, train,
                   1 if stage == 1 else 2)
    global_f = _layer(x, sd, 'refine_global.layer4', 3, train, 2).mean(
        (2, 3))
    att = x
    for i in range(6):
        name = f'attention.layer4.{i}'
        if i % 2 == 0:
            att = _bottleneck(att, sd, name, train)
        else:
            att = _bn(F.conv2d(att, sd[f'{name}.0.weight']), sd,
                      f'{name}.1', train)
    att = F.relu(att)
    batch, channels, height, width = x.shape
    local_in = (att.unsqueeze(2) * x.unsqueeze(1)).reshape(
        batch * 4, channels, height, width)
    parts = _layer(local_in, sd, 'refine_local.layer4', 3, train, 2).mean(
        (2, 3)).reshape(batch, 4, -1)
    if anchors is not None:
        mask = torch.distributions.Bernoulli(0.5).sample([batch, 4, 1])
        parts = parts * mask.double() + anchors[labels] * (1 - mask.double())
    feats = torch.cat([parts.reshape(batch, -1), global_f], 1)
    codes = torch.tanh(feats @ sd['hash_layer.0.weight'].T +
                       sd['hash_layer.0.bias'])
    return codes, parts


@pytest.fixture(scope='module')
def model64(converted):
    """The converted model in float64, to compare with the transcription
    to rounding (train-mode BatchNorm over a few small maps amplifies
    float32's)."""
    return copy.deepcopy(converted[1]).double()


@pytest.fixture(scope='module')
def converted():
    reference = reference_state_dict('exchnet', seed=1)
    model = build(12)
    result = model.load_state_dict(convert_state_dict(reference),
                                   strict=False)
    return reference, model, result


def test_every_reference_key_converts_and_loads(converted):
    reference, model, result = converted
    assert len(reference) == 452
    assert detect_method(reference) == 'exchnet'
    plain = convert_state_dict(reference)
    assert len(plain) == 452
    assert code_length(plain) == 12
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == DATABASE_BUFFERS
    ours = model.state_dict()
    for key, value in plain.items():
        assert torch.equal(ours[key], value), key
    assert torch.equal(ours['head.fc.weight'],
                       reference['hash_layer.0.weight'])
    assert torch.equal(ours['neck.attention_tower.5.1.running_var'],
                       reference['attention.layer4.5.1.running_var'])
    assert torch.equal(ours['neck.local_refiner.0.downsample.0.weight'],
                       reference['refine_local.layer4.0.downsample.0.weight'])
    # The facts' trainable-parameter count (reference model.parameters()).
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == 40_067_220


def test_each_key_list_is_told_as_its_own_method():
    """ExchNet's keys also hold A2-Net's tower and layer4 copies: only the
    hash layer tells them apart."""
    for name in ('exchnet', 'a2net', 'adsh'):
        keys = [key for key, _, _ in key_list(name)]
        assert detect_method(keys) == name


@pytest.mark.parametrize('train', [False, True])
def test_converted_model_gives_the_reference_codes(converted, model64,
                                                   train):
    reference, model = converted[0], model64
    sd = {k: v.double() if v.is_floating_point() else v
          for k, v in reference.items()}
    images = torch.randn(3, 3, 64, 64,
                         generator=torch.Generator().manual_seed(2))
    model.train(train)
    with torch.no_grad():
        expected, _ = reference_forward(sd, images.double(), train)
        codes = model(images.double(), mode='tensor')
    torch.testing.assert_close(codes, expected, rtol=0, atol=1e-10)
    assert torch.equal(codes >= 0, expected >= 0)


def test_converted_model_exchanges_as_the_reference(converted, model64):
    reference, model = converted[0], model64
    sd = {k: v.double() if v.is_floating_point() else v
          for k, v in reference.items()}
    generator = torch.Generator().manual_seed(4)
    images = torch.randn(4, 3, 64, 64, generator=generator)
    labels = torch.tensor([2, 0, 2, 1])
    anchors = torch.randn(3, 4, 2048, generator=generator)
    view = ClassAnchorView(round_index=35, num_rounds=40, labels=labels,
                           indices=torch.arange(4),
                           class_anchors=anchors[labels].double())
    model.train()
    with torch.no_grad():
        torch.manual_seed(11)
        expected, parts = reference_forward(sd, images.double(), True,
                                            anchors.double(), labels)
        torch.manual_seed(11)
        outputs = model.train_outputs(images.double(), view)
    torch.testing.assert_close(outputs['relaxed_codes'], expected, rtol=0,
                               atol=1e-10)
    torch.testing.assert_close(outputs['part_feats'], parts, rtol=0,
                               atol=1e-10)
    exchanged = (outputs['part_feats'] == anchors[labels].double()).all(-1)
    assert 0 < int(exchanged.sum()) < 16
    assert torch.equal(outputs['anchor_feats'], anchors[labels].double())


def test_convert_tool_in_a_subprocess(tmp_path):
    from mmengine.runner import load_checkpoint
    reference = reference_state_dict('exchnet', seed=1)
    src, dst = str(tmp_path / 'exchnet.pth'), str(tmp_path / 'ours.pth')
    torch.save(reference, src)
    tool = osp.join(REPO, 'tools/convert_official_ckpt.py')
    result = subprocess.run([sys.executable, tool, src, dst],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert 'converted 452 tensors (12-bit, exchnet)' in result.stdout
    model = build(12)
    load_checkpoint(model, dst, strict=False, logger='silent')
    assert torch.equal(model.state_dict()['head.fc.bias'],
                       reference['hash_layer.0.bias'])
    # Named as another method's, it is refused by the key that does not
    # fit, in one line.
    result = subprocess.run(
        [sys.executable, tool, src, str(tmp_path / 'x.pth'), '--method',
         'a2net'], capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert "hash_layer.0.weight" in result.stderr
    assert not osp.exists(tmp_path / 'x.pth')


def test_refuses_another_code_length_or_method(converted):
    reference, model, _ = converted
    plain = convert_state_dict(reference)
    with pytest.raises(ValueError, match='code_length=12.*model 24'):
        build(24).load_state_dict(plain, strict=False)
    a2net = convert_state_dict(reference_state_dict('a2net'), 'a2net')
    with pytest.raises(ValueError, match="another method's neck or head"):
        model.load_state_dict(a2net, strict=False)
