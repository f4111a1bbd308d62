"""HashNet's and DPSH's converter rules: random tensors with the keys of the
three reference models (DSH_Analysis hashnet.py: ADSH's keys; DeepHash-
pytorch's ResNet for DPSH.py and HashNet.py: the backbone twice and
hash_layer) convert, load into the CUB 12-bit configs' models and compute
what torchvision's ResNet-50 (the network both references build) computes
with them, in eval and train mode."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from mmqueryopt.converters import code_length, detect_method
from mmqueryopt.registry import MODELS
from reference_weights import key_list, reference_state_dict

MEMORY_BUFFERS = {'database.codes', 'database.labels'}
# DeepHash-pytorch's feature_layers.i is this attribute (ResNet.__init__).
FEATURE_LAYERS = {'0': 'conv1', '1': 'bn1', '4': 'layer1', '5': 'layer2',
                  '6': 'layer3', '7': 'layer4'}


def build(config):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, config)).model
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


def dhp_state_dict(seed):
    """DeepHash-pytorch's ResNet state dict: its two names of each backbone
    tensor hold the same tensor, as in a saved model."""
    state = reference_state_dict('dpsh', seed)
    for key in state:
        if key.startswith('feature_layers.'):
            _, index, rest = key.split('.', 2)
            state[key] = state[f'{FEATURE_LAYERS[index]}.{rest}']
    return state


def torchvision_reference(state):
    """torchvision's ResNet-50 with the reference's hash layer as fc, in
    float64: DSH_Analysis' models/resnet.py with_tanh=False and
    DeepHash-pytorch's network.ResNet both compute fc(GAP(layer4))."""
    state = {key.replace('hash_layer.', 'fc.'): value
             for key, value in state.items()
             if not key.startswith('feature_layers.')}
    net = torchvision.models.resnet50(num_classes=state['fc.bias'].numel())
    net.load_state_dict(state)
    return net.double()


CASES = [
    # (key list, state dict, --method, config)
    ('adsh', lambda: reference_state_dict('adsh', 5), 'hashnet',
     'configs/hashnet/hashnet_cub_12bit.py'),
    ('dpsh', lambda: dhp_state_dict(6), 'hashnet',
     'configs/hashnet/hashnet_dhp-150e_cub_12bit.py'),
    ('dpsh', lambda: dhp_state_dict(7), None, 'configs/dpsh/dpsh_cub_12bit.py'),
]


@pytest.mark.parametrize('keys,make_state,method,config', CASES)
def test_converted_reference_weights_give_the_reference_codes(
        keys, make_state, method, config):
    state = make_state()
    converted = convert_state_dict(state, method)
    assert len(state) == len(key_list(keys))
    assert len(converted) == 320  # the backbone once, the hash layer
    assert code_length(converted) == 12
    model = build(config).double()
    result = model.load_state_dict(converted, strict=False)
    assert set(result.missing_keys) == MEMORY_BUFFERS
    assert not result.unexpected_keys
    reference = torchvision_reference(state)
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    # Train mode first: its BatchNorm update is the same in both models.
    for train_mode in (True, False):
        model.train(train_mode)
        reference.train(train_mode)
        with torch.no_grad():
            expected = reference(images)
            # Outside a training batch the head gives u, the reference's
            # output (no tanh): the codes are its signs.
            torch.testing.assert_close(model.extract_feat(images), expected,
                                       rtol=0, atol=1e-10)
        assert expected.abs().min() > 1e-6
    model.eval()
    codes = torch.stack([s.hash_code for s in model.predict(images)])
    assert torch.equal(codes, torch.where(expected >= 0, 1.0, -1.0))


def test_the_keys_tell_dpsh_and_name_hashnet():
    dhp, dsh = reference_state_dict('dpsh'), reference_state_dict('adsh')
    # DeepHash-pytorch's HashNet and DPSH share their network and keys.
    assert key_list('hashnet') == key_list('dpsh')
    assert detect_method(dhp) == 'dpsh'
    assert detect_method(dsh) == 'adsh'
    assert convert_state_dict(dsh, 'hashnet').keys() == convert_state_dict(
        dsh).keys()
    assert convert_state_dict(dhp, 'hashnet').keys() == convert_state_dict(
        dhp).keys()


def test_convert_tool_in_a_subprocess(tmp_path):
    from mmengine.runner import load_checkpoint
    state = dhp_state_dict(8)
    src, dst = str(tmp_path / 'dpsh.pth'), str(tmp_path / 'ours.pth')
    torch.save(state, src)
    tool = osp.join(REPO, 'tools/convert_official_ckpt.py')
    result = subprocess.run([sys.executable, tool, src, dst],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert 'converted 320 tensors (12-bit, dpsh)' in result.stdout
    assert 'left out 318 tensors' in result.stdout
    assert 'feature_layers' in result.stdout
    model = build('configs/dpsh/dpsh_cub_12bit.py')
    load_checkpoint(model, dst, strict=False, logger='silent')
    assert torch.equal(model.state_dict()['head.fc.weight'],
                       state['hash_layer.weight'])
    # Named as A2-Net's, it is refused by a key that does not fit, in one
    # line, and nothing is written.
    result = subprocess.run(
        [sys.executable, tool, src, str(tmp_path / 'x.pth'), '--method',
         'a2net'], capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert 'conv1.weight' in result.stderr
    assert not osp.exists(tmp_path / 'x.pth')


def test_refuses_another_code_length_or_method():
    converted = convert_state_dict(dhp_state_dict(9))
    with pytest.raises(ValueError, match='code_length=12.*model 24'):
        build('configs/dpsh/dpsh_cub_24bit.py').load_state_dict(
            converted, strict=False)
    a2net = convert_state_dict(reference_state_dict('a2net'), 'a2net')
    with pytest.raises(ValueError, match="another method's neck or head"):
        build('configs/hashnet/hashnet_cub_12bit.py').load_state_dict(
            a2net, strict=False)
