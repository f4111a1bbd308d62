"""A2-Net / A2-Net++ modules: sizes from the facts file, the reference's
keys (tests/data/a2net_state_dict_12bit.txt), forward against a per-map
float64 recomputation, attention maps, pretrained layer4 copies, bad input.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from conftest import REPO
from convert_official_ckpt import convert_state_dict
from convert_official_ckpt import main as convert_main
from mmqueryopt.converters import code_length, detect_method
from mmqueryopt.models.necks import AttributeAttentionNeck
from mmqueryopt.registry import MODELS

KEY_LIST = osp.join(REPO, 'tests/data/a2net_state_dict_12bit.txt')
GENERATORS = ('holistic', 'reconstructed')
# a2net_facts.md, "Size and cost": trainable parameters without and with
# both A2-Net++ generator paths.
FACTS_PARAMS = {
    12: (40_264_344, 81_769_572),
    24: (41_174_448, 107_845_500),
    32: (42_108_864, 125_557_132),
    48: (44_764_128, 161_766_828),
}
DATABASE_BUFFERS = {'database.codes', 'database.sampled_codes',
                    'database.labels'}


def model_cfg(bits=12, generators=False):
    method = 'a2netpp' if generators else 'a2net'
    cfg = Config.fromfile(
        osp.join(REPO, f'configs/{method}/{method}_cub_{bits}bit.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.init_cfg = None
    return cfg.model


def build(bits=12, generators=False, **loss):
    init_default_scope('mmqueryopt')
    cfg = model_cfg(bits, generators)
    cfg.loss.update(loss)
    return MODELS.build(cfg)


def reference_state_dict(seed=0):
    """Random tensors with exactly the reference's keys and shapes."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for line in open(KEY_LIST):
        if line.startswith('#'):
            continue
        key, shape, _ = line.rstrip('\n').split('\t')
        size = tuple(int(s) for s in shape.strip('()').split(',') if s)
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(5)
        elif key.endswith('running_var'):
            state[key] = torch.rand(size, generator=generator) + 0.5
        else:
            state[key] = 0.05 * torch.randn(size, generator=generator)
    return state


@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(bits):
    init_default_scope('mmqueryopt')
    for generators, expected in zip((False, True), FACTS_PARAMS[bits]):
        cfg = model_cfg(bits, generators)
        # Nothing is frozen: the whole network trains, as in the code.
        assert not cfg.get('frozen_modules')
        backbone = MODELS.build(cfg.backbone)
        # Neck and head on the meta device: sizes without the memory.
        with torch.device('meta'):
            neck, head = MODELS.build(cfg.neck), MODELS.build(cfg.head)
        total = sum(p.numel() for module in (backbone, neck, head)
                    for p in module.parameters())
        assert total == expected
    # Facts: W is k (k + 1) 2048, the tower 1,471,296 + 66 M.
    assert head.tied_weight.numel() == bits * (bits + 1) * 2048
    assert sum(p.numel() for p in neck.attention_tower.parameters()
               ) == 1_471_296 + 66 * bits
    assert sum(p.numel() for p in backbone.parameters()) == 8_543_296


def test_whole_model_trains_at_12_bits(model12):
    assert sum(p.numel() for p in model12.parameters()
               if p.requires_grad) == 40_264_344


@pytest.fixture(scope='module')
def model12():
    return build(12)


def test_tensor_mode_gives_k_codes_in_train_and_eval(model12):
    model = model12
    images = torch.randn(2, 3, 32, 32)
    model.train()
    train_codes = model(images, mode='tensor')
    model.eval()
    eval_codes = model(images, mode='tensor')
    for codes in (train_codes, eval_codes):
        assert codes.shape == (2, 12)
        assert codes.abs().max() < 1
    assert model.head.relaxed_dims == 12


def test_forward_is_per_map_refinement_and_tied_codes(model12):
    """Folding the M attended maps into the batch equals refining each
    map alone; codes are tanh(W x) and the reconstruction W^T codes."""
    model = model12.eval()
    images = torch.randn(2, 3, 48, 48)
    neck, head = model.neck, model.head
    with torch.no_grad():
        feat = model.backbone(images)[-1]
        maps = neck.attention_tower(feat)
        locals_ = [
            neck.local_refiner(maps[:, c:c + 1] * feat).mean((2, 3))
            for c in range(12)
        ]
        holistic = torch.cat(
            locals_ + [neck.global_refiner(feat).mean((2, 3))], 1)
        torch.testing.assert_close(neck((feat, )), holistic,
                                   rtol=1e-5, atol=1e-5)
        weight = head.tied_weight.double()
        expected = torch.tanh(holistic.double() @ weight.T)
        torch.testing.assert_close(model(images).double(), expected,
                                   rtol=1e-5, atol=1e-6)
        head.train()
        outputs = head(holistic)
        torch.testing.assert_close(outputs['reconstructed_feats'].double(),
                                   expected @ weight, rtol=1e-5, atol=1e-6)
    assert holistic.shape == (2, 13 * 2048)


def test_attention_maps_are_normalised_tower_outputs(model12):
    model = model12.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = model.attention_maps(images)
        raw = model.neck.attention_tower(model.backbone(images)[-1])
    assert maps.shape == (2, 12, 4, 4)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum((2, 3)), torch.ones(2, 12))
    total = raw.sum((2, 3), keepdim=True)
    live = total.squeeze() > 0
    torch.testing.assert_close(maps[live], (raw / total)[live])
    # A map the ReLU zeroed is uniform, still a distribution.
    zero = torch.zeros(1, 64, 4, 4)
    neck = AttributeAttentionNeck(3, in_channels=64, out_channels=32,
                                  refiner_block='BasicBlock')
    neck.attention_tower[-1][1].bias.data.fill_(-1e3)
    neck.eval()
    torch.testing.assert_close(neck.attention_maps(zero),
                               torch.full((1, 3, 4, 4), 1 / 16))


def test_converter_maps_every_reference_key():
    reference = reference_state_dict()
    assert len(reference) == 527
    assert detect_method(reference) == 'a2net'
    # A2-Net++: every reference tensor has its place, none is missing.
    converted = convert_state_dict(reference, 'a2netpp')
    assert len(converted) == 527
    assert code_length(converted) == 12
    model = build(12, generators=True)
    result = model.load_state_dict(converted, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == DATABASE_BUFFERS
    ours = model.state_dict()
    for key, value in zip(converted, reference.values()):
        assert torch.equal(ours[key], value), key
    assert torch.equal(ours['head.tied_weight'], reference['W'])
    assert torch.equal(
        ours['head.image_generators.reconstructed.upsampling.5.1.bias'],
        reference['netG2.layer6.1.bias'])
    # A2-Net proper (what the keys tell): the generators are left out.
    plain = convert_state_dict(reference)
    generator_keys = [k for k in reference
                      if k.split('.')[0] in ('encoder', 'netG', 'encoder2',
                                             'netG2')]
    assert len(generator_keys) == 76
    assert len(plain) == 527 - 76
    assert not any('image_generators' in key for key in plain)
    model = build(12)
    result = model.load_state_dict(plain, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == DATABASE_BUFFERS
    ours = model.state_dict()
    for key, value in plain.items():
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize('method,config,tensors', [
    (None, 'a2net_cub_12bit', 451), ('a2net', 'a2net_cub_12bit', 451),
    ('a2netpp', 'a2netpp_cub_12bit', 527)])
def test_converted_reference_file_loads_into_the_config(tmp_path, method,
                                                        config, tensors):
    """The file the tool writes loads, through MMEngine's checkpoint
    loader, into the config's model with nothing missing or unexpected."""
    from mmengine.runner import load_checkpoint
    reference = reference_state_dict()
    src, dst = str(tmp_path / 'a2net.pth'), str(tmp_path / 'converted.pth')
    torch.save({'state_dict': reference}, src)
    argv = [src, dst] + ([] if method is None else ['--method', method])
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/convert_official_ckpt.py')] +
        argv, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert f'converted {tensors} tensors (12-bit, ' in result.stdout
    told = 'left out 76 tensors' in result.stdout
    assert told == (tensors == 451)
    if told:
        assert '--method a2netpp' in result.stdout
    model = build(12, generators=config.startswith('a2netpp'))
    load_checkpoint(model, dst, strict=False, logger='silent')
    loaded = model.state_dict()
    assert torch.equal(loaded['head.tied_weight'], reference['W'])
    assert torch.equal(loaded['neck.global_refiner.2.bn3.running_var'],
                       reference['refine_global.layer4.2.bn3.running_var'])
    if tensors == 527:
        assert torch.equal(
            loaded['head.image_generators.holistic.upsampling.0.0.weight'],
            reference['netG.layer1.0.weight'])


def test_convert_tool_tells_a2net_by_its_keys(tmp_path, capsys):
    reference = reference_state_dict()
    src, dst = str(tmp_path / 'a2net.pth'), str(tmp_path / 'converted.pth')
    torch.save(reference, src)
    convert_main([src, dst])
    out = capsys.readouterr().out
    assert 'converted 451 tensors (12-bit, a2net)' in out
    assert 'left out 76 tensors' in out
    converted = torch.load(dst)['state_dict']
    assert torch.equal(converted['neck.global_refiner.2.bn3.running_var'],
                       reference['refine_global.layer4.2.bn3.running_var'])
    # Told it is QueryOpt's, the file is refused by its first key.
    with pytest.raises(SystemExit, match="no rule for the key 'W'"):
        convert_main([src, dst, '--method', 'queryopt'])


def test_refuses_another_code_length_or_method():
    model = build(24)
    plain = convert_state_dict(reference_state_dict())
    with pytest.raises(ValueError, match='code_length=12.*model 24'):
        model.load_state_dict(plain, strict=False)
    init_default_scope('mmqueryopt')
    queryopt = Config.fromfile(
        osp.join(REPO, 'configs/queryopt_cub_12bit.py')).model
    queryopt.backbone.init_cfg = None
    other = MODELS.build(queryopt).state_dict()
    with pytest.raises(ValueError, match="another method's neck or head"):
        build(12).load_state_dict(other, strict=False)


def test_both_refiners_load_the_checkpoints_layer4(tmp_path):
    generator = torch.Generator().manual_seed(3)
    neck = build(12).neck
    layer4 = {
        f'layer4.{key}': torch.rand(value.shape, generator=generator) + 0.5
        if value.is_floating_point() else value
        for key, value in neck.local_refiner.state_dict().items()
    }
    path = str(tmp_path / 'r50.pth')
    torch.save(dict(layer4, **{'fc.weight': torch.zeros(2, 2)}), path)
    neck.init_cfg = dict(type='Pretrained', checkpoint=path, prefix='layer4.')
    tower_before = neck.attention_tower[0].conv1.weight.clone()
    neck.init_weights()
    for name in ('local_refiner', 'global_refiner'):
        for key, value in getattr(neck, name).state_dict().items():
            assert torch.equal(value, layer4[f'layer4.{key}']), (name, key)
    # The tower is drawn anew (Kaiming, fan_out), not loaded.
    assert not torch.equal(neck.attention_tower[0].conv1.weight,
                           tower_before)
    torch.save({'conv1.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="no keys starting with 'layer4.'"):
        neck.init_weights()


def test_missing_layer4_checkpoint_gives_the_advice():
    init_default_scope('mmqueryopt')
    cfg = model_cfg(12)
    cfg.neck.init_cfg = dict(type='Pretrained', prefix='layer4.',
                             checkpoint='/nonexistent/resnet50.pth')
    model = MODELS.build(cfg)
    with pytest.raises(OSError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'neck: /nonexistent/resnet50.pth' in message
    assert 'checkpoints/' in message
    assert 'model.neck.init_cfg.checkpoint=/path/to/file.pth' in message
    assert 'model.neck.init_cfg=None' in message
    # The shipped config loads the backbone and the neck's layer4 copies:
    # each gets its own override key.
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/a2net/a2net_cub_12bit.py'))
    cfg.model.backbone.init_cfg.checkpoint = '/nonexistent/resnet50.pth'
    model = MODELS.build(cfg.model)
    with pytest.raises(OSError) as info:
        model.init_weights()
    assert ('--cfg-options model.backbone.init_cfg.checkpoint=/path/to/'
            'file.pth model.neck.init_cfg.checkpoint=/path/to/file.pth'
            ) in str(info.value)


@pytest.mark.parametrize('bits', [0, -12, 1.5, True])
def test_code_length_must_be_positive(bits):
    with pytest.raises(ValueError, match='positive int'):
        AttributeAttentionNeck(bits)
    init_default_scope('mmqueryopt')
    with pytest.raises(ValueError, match='code_length must be a positive'):
        MODELS.build(dict(type='TiedAutoencoderHashHead', code_length=bits,
                          in_channels=64))


def test_activation_estimate_tracks_what_autograd_saves():
    neck = AttributeAttentionNeck(4).train()
    feat = torch.randn(2, 1024, 6, 6)
    maps = (feat.unsqueeze(1)[:, [0] * 4] * 0.5).flatten(0, 1)
    saved = {}

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = (
            tensor.untyped_storage().nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        neck.local_refiner(maps.requires_grad_())
    parameters = {
        p.untyped_storage().data_ptr()
        for p in neck.parameters()
    }
    measured = sum(n for ptr, n in saved.items() if ptr not in parameters)
    estimate = neck.local_activation_bytes(2, 6, 6)
    assert 0.8 < estimate / measured < 1.25


def test_local_path_too_large_is_refused_with_its_size():
    neck = AttributeAttentionNeck(48, memory_limit=2**30).train()
    needed = neck.local_activation_bytes(16, 14, 14)
    # 16 images x 48 maps of 1024 x 14 x 14 through layer4: 6.2 MB each
    # (1,555,456 floats) kept for the backward pass.
    assert needed == 768 * 1_555_456 * 4
    with pytest.raises(RuntimeError,
                       match=r'768 passes .* need about 4\.45 GiB'):
        neck(torch.zeros(16, 1024, 14, 14))
    # Evaluation keeps nothing for backward: no check.
    neck.memory_limit = 1
    with torch.no_grad():
        assert neck(torch.zeros(2, 1024, 4, 4)).shape == (2, 49 * 2048)


def test_image_generators_decode_224_images():
    init_default_scope('mmqueryopt')
    head = MODELS.build(
        dict(type='TiedAutoencoderHashHead', code_length=4, in_channels=40,
             image_sources=GENERATORS)).train()
    outputs = head(torch.randn(2, 40))
    for source in GENERATORS:
        images = outputs[f'generated_images_{source}']
        assert images.shape == (2, 3, 224, 224)
        assert ((images > 0) & (images < 1)).all()
    with pytest.raises(ValueError, match='image_sources'):
        MODELS.build(dict(type='TiedAutoencoderHashHead', code_length=4,
                          in_channels=40, image_sources=('codes', )))


def test_a2netpp_option_without_decoders_is_refused():
    model = build(12, pixel_weights=(0.01, 0.1))
    model.database.prepare(torch.arange(6) % 3)
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 3)
        for i in range(2)
    ]
    with pytest.raises(ValueError, match='A2-Net\\+\\+ option.*no '
                       "'holistic' image decoder"):
        model(torch.randn(2, 3, 64, 64), samples, mode='loss')
