"""The converter maps the authors' state dict onto HashRetriever, and the
converted weights compute what the authors' model computes; it reads its
input without running code from it."""
import argparse
import os
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from convert_official_ckpt import convert_state_dict
from convert_official_ckpt import main as convert_main
from conftest import REPO
from mmqueryopt.fileio import load_checkpoint_file
from mmqueryopt.registry import MODELS
from test_checkpoint_io import bad_file

KEY_LIST = osp.join(REPO, 'tests/data/official_state_dict_12bit.txt')


def official_state_dict(seed=0):
    """Random tensors with exactly the authors' keys and shapes."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for line in open(KEY_LIST):
        key, shape, _ = line.split()
        size = () if shape == 'scalar' else tuple(map(int, shape.split('x')))
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            state[key] = torch.rand(size, generator=generator) + 0.5
        elif key.endswith('_embed.weight') and key != 'hash_embed.weight':
            # The authors' inits: uniform position tables, N(0, 1) queries;
            # at these scales attention is far from uniform.
            sample = torch.rand if 'backbone' in key else torch.randn
            state[key] = sample(size, generator=generator)
        else:
            state[key] = 0.05 * torch.randn(size, generator=generator)
    return state


def build_model():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_converted_keys_load_exactly():
    official = official_state_dict()
    assert len(official) == 375
    converted = convert_state_dict({'model': official})
    model = build_model()
    result = model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == [
        'database.codes', 'database.labels', 'database.sampled_codes'
    ]


def authors_forward(state, images):
    """QueryOpt's inference written from the facts file, on the authors'
    key names, with torchvision's ResNet-50 as their body."""
    body = torchvision.models.resnet50()
    body.load_state_dict(
        {k[len('backbone.0.body.'):]: v
         for k, v in state.items() if k.startswith('backbone.0.body.')},
        strict=False)
    body.eval()
    x = body.maxpool(body.relu(body.bn1(body.conv1(images))))
    c3 = body.layer3(body.layer2(body.layer1(x)))
    c4 = body.layer4(c3)

    def bn(x, prefix):
        return F.batch_norm(x, state[prefix + 'running_mean'],
                            state[prefix + 'running_var'],
                            state[prefix + 'weight'], state[prefix + 'bias'])

    d = 'backbone.0.deconv.'
    up = bn(F.conv2d(c4, state[d + '0.weight'], state[d + '0.bias']), d + '1.')
    up = bn(F.conv_transpose2d(up, state[d + '2.weight'], state[d + '2.bias'],
                               stride=2, padding=1), d + '3.')
    up = F.relu(bn(F.conv2d(up, state[d + '4.weight'], state[d + '4.bias']),
                   d + '5.'))
    p3 = F.conv2d(c3, state['backbone.0.conv_layer3.weight'],
                  state['backbone.0.conv_layer3.bias']) + up

    row, col = state['backbone.1.row_embed.weight'], state[
        'backbone.1.col_embed.weight']
    tokens, pos, offset = [], [], 0
    for level, feat in enumerate((p3, c4)):
        proj = F.conv2d(feat, state[f'input_proj_list.{level}.weight'],
                        state[f'input_proj_list.{level}.bias'])
        h, w = proj.shape[-2:]
        for y in range(h):
            for x in range(w):
                tokens.append(proj[:, :, y, x])
                pos.append(torch.cat([col[offset + x], row[offset + y]]))
        offset += w
    src = torch.stack(tokens)  # (T, B, d), DETR's sequence-first layout
    pos = torch.stack(pos)[:, None].expand_as(src)

    def attention(prefix, query, key, value):
        return F.multi_head_attention_forward(
            query, key, value, 384, 8, state[prefix + 'in_proj_weight'],
            state[prefix + 'in_proj_bias'], None, None, False, 0.0,
            state[prefix + 'out_proj.weight'], state[prefix + 'out_proj.bias'],
            training=False, need_weights=False)[0]

    def norm(x, prefix):
        return F.layer_norm(x, (384, ), state[prefix + 'weight'],
                            state[prefix + 'bias'])

    def ffn(x, prefix):
        return F.linear(
            F.relu(F.linear(x, state[prefix + 'linear1.weight'],
                            state[prefix + 'linear1.bias'])),
            state[prefix + 'linear2.weight'], state[prefix + 'linear2.bias'])

    e = 'transformer.encoder.layers.0.'
    src = norm(src + attention(e + 'self_attn.', src + pos, src + pos, src),
               e + 'norm1.')
    memory = norm(src + ffn(src, e), e + 'norm2.')

    queries = state['query_embed.weight'][:, None].expand(-1, src.size(1), -1)
    dl = 'transformer.decoder.layers.0.'
    target = torch.zeros_like(queries)
    target = norm(
        target + attention(dl + 'multihead_attn.', target + queries,
                           memory + pos, memory), dl + 'norm2.')
    target = norm(target + ffn(target, dl), dl + 'norm3.')
    target = norm(target, 'transformer.decoder.norm.')
    bits = F.linear(F.normalize(target, dim=-1), state['hash_embed.weight'])
    return torch.tanh(bits[..., 0]).T  # (B, k)


def test_converted_model_computes_the_authors_codes():
    official = official_state_dict(seed=1)
    model = build_model()
    model.load_state_dict(convert_state_dict(official), strict=False)
    model.eval()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ours = model(images)
        theirs = authors_forward(official, images)
    assert ours.shape == theirs.shape == (2, 12)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert theirs.abs().min() > 1e-3  # signs are meaningful
    assert torch.equal(torch.sign(ours), torch.sign(theirs))


def test_unknown_key_is_refused():
    with pytest.raises(KeyError, match='classifier.weight'):
        convert_state_dict({'classifier.weight': torch.zeros(1)})
    # Told the method, the first key without a rule is named.
    with pytest.raises(KeyError, match="no rule for the key 'classifier"):
        convert_state_dict(
            {'query_embed.weight': torch.zeros(1),
             'classifier.weight': torch.zeros(1)}, method='queryopt')
    with pytest.raises(KeyError, match="unknown method 'detr'"):
        convert_state_dict({'query_embed.weight': torch.zeros(1)}, 'detr')


def authors_training_checkpoint():
    """What the authors' training script saves: weights, optimizer state
    and its argparse options."""
    return dict(
        model=official_state_dict(),
        optimizer=dict(state={}, param_groups=[dict(lr=1e-4, params=[0])]),
        epoch=29,
        args=argparse.Namespace(code_length=12, lr=1e-4, lr_drop=30,
                                dataset_file='cub', device='cuda'))


def test_authors_checkpoint_converts_without_the_unsafe_flag(tmp_path):
    src, dst = str(tmp_path / 'authors.pth'), str(tmp_path / 'ours.pth')
    torch.save(authors_training_checkpoint(), src)
    convert_main([src, dst])
    converted = load_checkpoint_file(dst)
    expected = convert_state_dict(official_state_dict())
    assert converted['state_dict'].keys() == expected.keys()
    assert all(torch.equal(converted['state_dict'][key], value)
               for key, value in expected.items())
    assert converted['meta'] == dict(converted_from=src)
    assert sorted(os.listdir(tmp_path)) == ['authors.pth', 'ours.pth']


def as_whole_model(state_dict):
    """A module tree whose state dict is ``state_dict``: what pickling the
    authors' model object itself gives."""
    root = nn.Module()
    for key, value in state_dict.items():
        *path, name = key.split('.')
        module = root
        for part in path:
            if part not in module._modules:
                module.add_module(part, nn.Module())
            module = module._modules[part]
        module.register_buffer(name, value)
    return root


def test_whole_model_pickle_needs_the_unsafe_flag(tmp_path):
    src, dst = str(tmp_path / 'model.pth'), str(tmp_path / 'ours.pth')
    torch.save(as_whole_model(official_state_dict()), src)
    with pytest.raises(SystemExit, match=r'torch.nn.modules.module.Module.*'
                       r'source you trust, --unsafe-pickle reads it'):
        convert_main([src, dst])
    assert not osp.exists(dst)
    convert_main([src, dst, '--unsafe-pickle'])
    assert load_checkpoint_file(dst)['state_dict'].keys() == \
        convert_state_dict(official_state_dict()).keys()


@pytest.mark.parametrize('kind, words', [
    ('crafted', 'was refused'),
    ('truncated', 'is truncated'),
    ('empty', 'is empty'),
    ('garbage', 'is not a checkpoint'),
    ('directory', 'is not a file'),
    ('ours', "cannot tell the method from the keys (e.g. "
     "['backbone.conv1.weight'])"),
])
def test_bad_input_names_file_and_cause_and_writes_nothing(
        tmp_path, kind, words):
    if kind == 'ours':  # an mmqueryopt checkpoint, not the authors'
        src = str(tmp_path / 'ours.pth')
        torch.save(dict(state_dict={'backbone.conv1.weight': torch.ones(1)}),
                   src)
    else:
        src = bad_file(kind, tmp_path)
    dst = str(tmp_path / 'out' / 'converted.pth')
    with pytest.raises(SystemExit) as info:
        convert_main([src, dst])
    message = str(info.value.code)
    assert message.startswith('error: ') and repr(src) in message
    assert words in message
    assert not (tmp_path / 'code_ran').exists()
    assert not osp.exists(osp.dirname(dst))
