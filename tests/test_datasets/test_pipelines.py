"""The fine-grained configs resize like the authors: torchvision on PIL images.

The authors' loaders resize PIL images with torchvision (bilinear, which PIL
always antialiases): ``RandomResizedCrop(224)`` for training and
``Resize(256)`` + ``CenterCrop(224)`` for queries. Here the pipelines built
from the CUB config are compared with torchvision itself on the same JPEG
files, in RGB order (our pipeline packs BGR).

The expected difference is exactly 0, not merely small: both sides decode
with PIL (``LoadImageBGR`` converts to RGB like the authors' loader), compute
the same integer output size and box, and resample with the same call,
PIL's ``Image.resize(..., BILINEAR)``; a per-channel resize does not care
that our array holds BGR. Nothing is left that could round differently, so
any difference means the configs no longer resize like the authors.

The test images are textured (fine gratings and noise) so that a resize
without antialiasing is visibly wrong on them: the cv2 controls below check
that the images tell the two resizes apart.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from conftest import REPO
from mmqueryopt.registry import TRANSFORMS

CONFIG = osp.join(REPO, 'configs/queryopt_cub_12bit.py')

# (width, height). Odd sizes where a resize rule could round differently
# from torchvision's int(256 * long / short) and int(round((h - 224) / 2)):
# 500x333 -> 384x256 (384.38), 333x500 -> 256x384, 1000x750 -> 341x256
# (341.33), 257x256 -> unchanged, and 150x200 -> upscaled to 256x341.
SIZES = [(500, 333), (333, 500), (1000, 750), (257, 256), (500, 375),
         (150, 200)]


def textured_jpeg(path, width, height, seed=0):
    """Write a JPEG with detail near the Nyquist frequency: per-channel
    gratings of different orientations plus noise, so that downscaling
    without a low-pass filter aliases."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for period, angle in ((2.3, 0.3), (3.1, 1.2), (2.7, 2.0)):
        phase = (x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period
        channels.append(128 + 70 * np.sin(phase))
    img = np.stack(channels, axis=-1) + rng.normal(0, 25, (height, width, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
        path, quality=95)
    return str(path)


def config_pipelines():
    """The train and test pipeline configs of the CUB config file."""
    cfg = Config.fromfile(CONFIG)
    return (copy.deepcopy(cfg.train_dataloader.dataset.pipeline),
            copy.deepcopy(cfg.test_dataloader.dataset.pipeline))


def build(pipeline_cfg, backend=None):
    """Build a list of transforms; ``backend`` overrides every resize's."""
    init_default_scope('mmqueryopt')
    transforms = []
    for step in copy.deepcopy(pipeline_cfg):
        if backend is not None and 'backend' in step:
            step['backend'] = backend
        transforms.append(TRANSFORMS.build(step))
    return transforms


def run(transforms, path):
    results = dict(img_path=path)
    for transform in transforms:
        results = transform(results)
    return results


def packed_rgb(results):
    """HWC RGB uint8 of a packed (CHW, BGR) result."""
    return results['inputs'].permute(1, 2, 0).numpy()[..., ::-1]


def abs_diff(ours, theirs):
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    return np.abs(ours.astype(np.int16) - theirs.astype(np.int16))


def torchvision_query(path):
    with Image.open(path) as img:
        return T.Compose([T.Resize(256), T.CenterCrop(224)])(
            img.convert('RGB'))


def crop_transforms(train_cfg, backend=None):
    """The train pipeline up to its RandomResizedCrop (the flip after it is
    random and moves no pixel values)."""
    types = [step['type'] for step in train_cfg]
    end = types.index('RandomResizedCrop') + 1
    transforms = build(train_cfg[:end], backend)
    return transforms[:-1], transforms[-1]


def crop_and_box(train_cfg, path, seed, backend=None):
    """Our training crop for a numpy seed, and the box it cut.

    The box comes from the transform's own sampler under the same seed, so
    the crop and the box are drawn identically."""
    loading, crop = crop_transforms(train_cfg, backend)
    results = run(loading, path)
    np.random.seed(seed)
    box = crop.rand_crop_params(results['img'])
    np.random.seed(seed)
    results = crop(results)
    return results['img'][..., ::-1], box


def torchvision_crop(path, box):
    top, left, height, width = box
    with Image.open(path) as img:
        return TF.resized_crop(img.convert('RGB'), top, left, height, width,
                               [224, 224])


def test_config_resizes_with_pillow_bilinear():
    train_cfg, test_cfg = config_pipelines()
    resizes = [s for s in train_cfg + test_cfg
               if s['type'] in ('RandomResizedCrop', 'ResizeEdge')]
    assert len(resizes) == 2
    for step in resizes:
        assert step.get('backend') == 'pillow'
        assert step.get('interpolation', 'bilinear') == 'bilinear'


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_query_pipeline_matches_torchvision(tmp_path, size):
    path = textured_jpeg(tmp_path / 'img.jpg', *size)
    _, test_cfg = config_pipelines()
    ours = packed_rgb(run(build(test_cfg), path))
    diff = abs_diff(ours, torchvision_query(path))
    assert ours.shape == (224, 224, 3)
    assert diff.max() == 0, f'max {diff.max()}, mean {diff.mean():.2f}'


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_train_crop_matches_torchvision(tmp_path, size, seed):
    path = textured_jpeg(tmp_path / 'img.jpg', *size)
    train_cfg, _ = config_pipelines()
    ours, box = crop_and_box(train_cfg, path, seed)
    diff = abs_diff(ours, torchvision_crop(path, box))
    assert ours.shape == (224, 224, 3)
    assert diff.max() == 0, f'box {box}: max {diff.max()}'


def test_train_pipeline_packs_the_crop(tmp_path):
    """The whole train pipeline (flip and pack included) outputs the crop
    or its mirror image: nothing after the crop resamples."""
    path = textured_jpeg(tmp_path / 'img.jpg', 1000, 750)
    train_cfg, _ = config_pipelines()
    crop, _ = crop_and_box(train_cfg, path, seed=5)
    np.random.seed(5)
    packed = run(build(train_cfg), path)
    ours = packed_rgb(packed)
    assert (np.array_equal(ours, crop)
            or np.array_equal(ours, crop[:, ::-1])), 'not the crop'
    assert packed['inputs'].dtype == torch.uint8


def test_textures_tell_cv2_from_torchvision(tmp_path):
    """On a large textured photo, MMPretrain's default OpenCV bilinear (no
    antialiasing) is far from torchvision, so the exact matches above are
    not an accident of the images. With the configs' old cv2 backend the
    tests above fail this way."""
    path = textured_jpeg(tmp_path / 'img.jpg', 1000, 750)
    train_cfg, test_cfg = config_pipelines()

    query_cv2 = abs_diff(
        packed_rgb(run(build(test_cfg, backend='cv2'), path)),
        torchvision_query(path))
    assert query_cv2.max() > 40 and query_cv2.mean() > 5

    # A box covering most of the image: a ~3x downscale like the query's.
    top, left, height, width = 10, 20, 700, 900
    loading, crop = crop_transforms(train_cfg, backend='cv2')
    crop.rand_crop_params = lambda img: (top, left, height, width)
    train_cv2 = abs_diff(
        run(loading + [crop], path)['img'][..., ::-1],
        torchvision_crop(path, (top, left, height, width)))
    assert train_cv2.max() > 40 and train_cv2.mean() > 5
