"""Other MMPretrain backbones under QueryOpt's neck and head: the shipped
ConvNeXt-T, Swin-T and ViT-B/16 configs, the neck's two fusion cases, and
the errors a backbone/neck mismatch gives."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import dataset_trees  # noqa: I100
from conftest import REPO
from mmqueryopt.models import SubtleFeatureNeck, hash_retriever
from mmqueryopt.models.hash_retriever import _hub_file_name
from mmqueryopt.registry import MODELS

# Config -> (neck.in_channels, frozen parameter-name prefixes, trainable
# parameters at 224 as tools/analysis_tools/get_flops.py reports them).
BACKBONES = {
    'queryopt_convnext-t_cub_12bit.py':
    ((384, 768), ('backbone.downsample_layers.0.', 'backbone.stages.0.'),
     33_876_608),
    'queryopt_swin-t_cub_12bit.py':
    ((384, 768), ('backbone.patch_embed.', 'backbone.stages.0.blocks.'),
     33_589_028),
    'queryopt_vit-b16_cub_12bit.py':
    ((768, 768), ('backbone.patch_embed.', 'backbone.cls_token',
                  'backbone.pos_embed', 'backbone.layers.0.',
                  'backbone.layers.1.'), 77_415_040),
}
SIZE = 64


def backbone_cfg(name: str) -> Config:
    """A shipped config without pretrained weights, fit for 64x64 input."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'queryopt', name))
    cfg.model.backbone.init_cfg = None  # no network here
    if cfg.model.backbone.type == 'SwinTransformer':
        # At 64x64 the last stages' maps (4x4, 2x2) are smaller than the
        # 7x7 window; Swin pads them only when asked.
        cfg.model.backbone.pad_small_map = True
    return cfg


def build(cfg: Config):
    init_default_scope('mmqueryopt')
    return MODELS.build(cfg.model)


def test_every_backbone_config_is_tested():
    # The ablation and branch-count variants change the head, not the
    # backbone (tests/test_configs/test_ablation_configs.py).
    shipped = {
        osp.basename(p)
        for p in glob.glob(
            osp.join(REPO, 'configs/queryopt/queryopt_*-*_*bit.py'))
        if not osp.basename(p).split('_')[1].startswith(
            ('ablation-', 'branches-'))
    }
    assert shipped == set(BACKBONES)


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_config_builds_and_trains_its_backbone(name):
    in_channels, frozen, trainable = BACKBONES[name]
    cfg = backbone_cfg(name)
    assert tuple(cfg.model.neck.in_channels) == in_channels
    # Same schedule and optimiser as the ResNet-50 CUB config.
    base = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    assert cfg.optim_wrapper == base.optim_wrapper
    assert cfg.train_cfg == base.train_cfg
    assert cfg.model.head == base.model.head
    torch.manual_seed(0)
    model = build(cfg)
    params = dict(model.named_parameters())
    frozen_names = {n for n in params if n.startswith(frozen)}
    assert frozen_names
    assert {n for n, p in params.items() if not p.requires_grad} == \
        frozen_names
    assert sum(p.numel() for p in params.values()
               if p.requires_grad) == trainable

    images = torch.randn(2, 3, SIZE, SIZE)
    model.eval()
    with torch.no_grad():
        codes = model(images)
    model.train()
    relaxed = model(images)
    assert codes.shape == (2, 12) and relaxed.shape == (2, 96)
    assert relaxed.abs().max() < 1
    relaxed.sum().backward()
    for n, p in params.items():
        if n in frozen_names:
            assert p.grad is None, n
    # Gradients reach the backbone's first trainable block and its last.
    backbone_grads = [(n, p.grad) for n, p in params.items()
                      if n.startswith('backbone.') and n not in frozen_names
                      and p.dim() > 1]
    for n, grad in (backbone_grads[0], backbone_grads[-1]):
        assert grad is not None and grad.abs().sum() > 0, n


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_config_trains_one_iteration_and_evaluates(name, tmp_path):
    cfg = backbone_cfg(name)
    root = str(dataset_trees.make_cub(tmp_path / 'data'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader.sampler.update(num_samples=2, epochs_per_round=1)
    cfg.train_cfg.update(max_epochs=1, val_interval=1, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(save_best=None)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        cfg[loader].dataset.update(data_root=root, warn_size=False)
    cfg.train_dataloader.dataset.pipeline[1].scale = SIZE
    cfg.val_dataloader.dataset.pipeline[1].scale = SIZE + 8
    cfg.val_dataloader.dataset.pipeline[2].crop_size = SIZE
    init_default_scope('mmqueryopt')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    # The tiny CUB tree's 4 training images are the database.
    assert runner.model.database.codes.shape == (4, 96)
    assert set(runner.model.database.codes.unique().tolist()) <= {-1, 1}
    assert 0 <= runner.message_hub.get_scalar(
        'val/retrieval/mAP').current() <= 1


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_missing_pretrained_file_gives_advice(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'queryopt', name))
    url = cfg.model.backbone.init_cfg.checkpoint
    # MMPretrain's model-zoo weights, as torch.hub caches them.
    assert url.startswith('https://download.openmmlab.com/mmclassification/')
    assert _hub_file_name(url) == url.rsplit('/', 1)[1]
    cfg.model.backbone.init_cfg.checkpoint = '/nonexistent/weights.pth'
    model = build(cfg)
    with pytest.raises(OSError) as info:
        model.init_weights()
    assert '/nonexistent/weights.pth' in str(info.value)
    assert 'model.backbone.init_cfg.checkpoint=' in str(info.value)


def test_torchvision_name_advises_its_cache_file():
    assert _hub_file_name('torchvision://resnet50') == 'resnet50-0676ba61.pth'
    assert _hub_file_name('/data/resnet50.pth') is None


def small_neck(upsample_factor: int, num_layers: int = 1, **kwargs):
    return SubtleFeatureNeck(
        in_channels=(6, 10), embed_dims=8, top_down_channels=4,
        upsample_factor=upsample_factor, num_heads=2, ffn_dims=16,
        num_layers=num_layers, **kwargs)


def batch_norm(x, bn):
    """Train-mode BatchNorm from its definition (biased batch variance)."""
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    return ((x - mean) / torch.sqrt(var + bn.eps) * bn.weight[:, None, None]
            + bn.bias[:, None, None])


@pytest.mark.parametrize('upsample_factor', [1, 2])
def test_neck_fusion_from_its_definition(upsample_factor):
    torch.manual_seed(0)
    # No encoder layer: the tokens are the projected levels themselves.
    neck = small_neck(upsample_factor, num_layers=0)
    neck.init_weights()
    c3 = torch.randn(2, 6, 6, 4)
    c4 = torch.randn(2, 10, 6 // upsample_factor, 4 // upsample_factor)
    tokens, pos = neck((c3, c4))
    conv1, bn1, spatial, bn2, conv2, bn3, _ = neck.top_down
    x = batch_norm(F.conv2d(c4, conv1.weight, conv1.bias), bn1)
    if upsample_factor == 2:
        x = F.conv_transpose2d(x, spatial.weight, spatial.bias, stride=2,
                               padding=1)
    else:
        # No upsampling: a stride-1 3x3 conv keeps the grid.
        x = F.conv2d(x, spatial.weight, spatial.bias, padding=1)
    x = batch_norm(F.conv2d(batch_norm(x, bn2), conv2.weight, conv2.bias),
                   bn3).relu()
    p3 = F.conv2d(c3, neck.lateral.weight, neck.lateral.bias) + x
    proj3, proj4 = neck.input_projs
    expected = torch.cat([
        F.conv2d(p3, proj3.weight, proj3.bias).flatten(2),
        F.conv2d(c4, proj4.weight, proj4.bias).flatten(2)
    ], dim=2).transpose(1, 2)
    num_c4 = (6 // upsample_factor) * (4 // upsample_factor)
    assert tokens.shape == pos.shape == (2, 24 + num_c4, 8)
    torch.testing.assert_close(tokens, expected)
    # C4's last token (y, x) = (h4 - 1, w4 - 1): rows and columns offset by
    # P3's width, 4.
    col, row = neck.col_embed.weight, neck.row_embed.weight
    h4, w4 = 6 // upsample_factor, 4 // upsample_factor
    torch.testing.assert_close(
        pos[0, -1], torch.cat([col[4 + w4 - 1], row[4 + h4 - 1]]))


def test_resnet50_neck_keeps_its_state_dict_keys():
    neck = SubtleFeatureNeck()
    assert isinstance(neck.top_down[2], torch.nn.ConvTranspose2d)
    assert neck.top_down[2].stride == (2, 2)
    # The authors' converted checkpoint is checked in test_convert.py; the
    # top-down path's keys are the positions 0..5 of one Sequential.
    assert [k for k in neck.state_dict() if k.startswith('top_down.')][:3] \
        == ['top_down.0.weight', 'top_down.0.bias', 'top_down.1.weight']


@pytest.mark.parametrize('side, fits', [(14, True), (24, True), (28, True),
                                        (36, False)])
def test_resnet50_position_tables_cover_448(side, fits):
    # ResNet-50 maps at 224, 384, 448 and 576 inputs: C3 side x side, C4
    # half; the tables need side + side / 2 entries, and have 50.
    neck = SubtleFeatureNeck(embed_dims=8, top_down_channels=4, num_heads=2,
                             ffn_dims=8, num_layers=0)
    maps = (torch.randn(1, 1024, side, side),
            torch.randn(1, 2048, side // 2, side // 2))
    if fits:
        assert neck(maps)[0].shape == (1, side * side + (side // 2)**2, 8)
    else:
        with pytest.raises(ValueError,
                           match=r'model.neck.num_pos_embeds >= 54, the '
                           r'tables have 50'):
            neck(maps)


def test_vit_config_tables_cover_448():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_vit-b16_cub_12bit.py'))
    # 448 / 16 = 28 per side and two levels of one size: 28 + 28.
    assert cfg.model.neck.num_pos_embeds >= 56


@pytest.mark.parametrize('maps, match', [
    ((torch.randn(1, 10, 3, 2), ), r'backbone gave 1: set '
     r'model.backbone.out_indices'),
    ((torch.randn(1, 6, 6, 4), torch.randn(1, 12, 3, 2)),
     r'channels \(6, 12\), but model.neck.in_channels=\(6, 10\): set it to '
     r'\(6, 12\)'),
    ((torch.randn(1, 6, 6, 4), torch.randn(1, 10, 6, 4)),
     r'upsample_factor=2 .* gave \(1, 6, 6, 4\) and \(1, 10, 6, 4\)'),
    ((torch.randn(1, 6, 7, 7), torch.randn(1, 10, 4, 4)),
     r'gave \(1, 6, 7, 7\) and \(1, 10, 4, 4\)'),
    ((torch.randn(1, 6), torch.randn(1, 10)),
     r"\(B, C, H, W\) maps.*model.backbone.out_type='featmap'"),
])
def test_neck_rejects_maps_it_cannot_fuse(maps, match):
    with pytest.raises(ValueError, match=match):
        small_neck(2)(maps)


def test_neck_rejects_other_factors():
    with pytest.raises(ValueError, match='model.neck.upsample_factor'):
        small_neck(4)


@pytest.mark.parametrize('name, change, match', [
    ('queryopt_convnext-t_cub_12bit.py',
     dict(neck=dict(in_channels=(1024, 2048))),
     r'channels \(384, 768\), but model.neck.in_channels=\(1024, 2048\)'),
    ('queryopt_vit-b16_cub_12bit.py', dict(neck=dict(upsample_factor=2)),
     r'upsample_factor=2.*gave \(1, 768, 4, 4\) and \(1, 768, 4, 4\)'),
    ('queryopt_swin-t_cub_12bit.py', dict(backbone=dict(out_indices=(3, ))),
     r'backbone gave 1: set model.backbone.out_indices'),
])
def test_mismatched_config_fails_on_first_batch(name, change, match):
    cfg = backbone_cfg(name)
    cfg.merge_from_dict(dict(model=change))
    model = build(cfg).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=match):
        model(torch.randn(1, 3, SIZE, SIZE))


def test_frozen_modules_must_name_something():
    cfg = backbone_cfg('queryopt_vit-b16_cub_12bit.py')
    # One of two names absent: a typo.
    cfg.model.frozen_modules = ('backbone.cls_token', 'backbone.layer1')
    with pytest.raises(ValueError, match="'backbone.layer1'"):
        build(cfg)


def test_plain_vit_swaps_in_by_backbone_and_channels_alone(
        tmp_path, monkeypatch):
    """DeiT-Small's last two blocks (both 384 x 14 x 14 at 224) replace
    ResNet-50 in the ResNet-50 config by two keys: the neck tells its
    resolution ratio (1) from the backbone, ResNet's frozen_modules are
    skipped with a warning, and one training step runs."""
    child = tmp_path / 'deit_s_cub_12bit.py'
    child.write_text(
        f"_base_ = [{osp.join(REPO, 'configs/queryopt_cub_12bit.py')!r}]\n"
        "model = dict(\n"
        "    backbone=dict(_delete_=True, type='VisionTransformer',\n"
        "                  arch='deit-small', out_indices=(10, 11),\n"
        "                  out_type='featmap'),\n"
        "    neck=dict(in_channels=(384, 384)))\n")
    cfg = Config.fromfile(str(child))
    assert 'upsample_factor' not in cfg.model.neck
    torch.manual_seed(0)
    logged = []
    monkeypatch.setattr(hash_retriever, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    model = build(cfg)
    assert len(logged) == 1 and 'nothing is frozen' in logged[0]
    assert 'backbone.conv1, backbone.bn1, backbone.layer1' in logged[0]
    assert model.neck.upsample_factor == 1
    assert isinstance(model.neck.top_down[2], torch.nn.Conv2d)
    assert all(p.requires_grad for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    images = torch.randn(2, 3, 224, 224)
    before = model.backbone.layers[11].ffn.layers[1].weight.detach().clone()
    relaxed = model(images)
    assert relaxed.shape == (2, 96)
    relaxed.square().sum().backward()
    optimizer.step()
    after = model.backbone.layers[11].ffn.layers[1].weight
    assert not torch.equal(before, after)
    # The ResNet-50 config itself still upsamples (factor 2, as before).
    resnet = build(Config.fromfile(
        osp.join(REPO, 'configs/queryopt_cub_12bit.py')))
    assert resnet.neck.upsample_factor == 2
    assert isinstance(resnet.neck.top_down[2], torch.nn.ConvTranspose2d)


def test_neck_refuses_backbone_maps_it_cannot_fuse():
    cfg = backbone_cfg('queryopt_vit-b16_cub_12bit.py')
    del cfg.model.neck.upsample_factor
    cfg.model.backbone = dict(type='ResNet', depth=18, out_indices=(1, 3))
    cfg.model.frozen_modules = ()
    cfg.model.neck.in_channels = (128, 512)
    with pytest.raises(ValueError, match=r'backbone gives \(1, 128, 28, 28\) '
                       r'and \(1, 512, 7, 7\): choose other '
                       r'model.backbone.out_indices'):
        build(cfg)
