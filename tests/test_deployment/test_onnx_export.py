"""mmqueryopt.deployment: the exported graph gives tools/encode.py's codes
(every method's model), its preprocessing and tie rule by hand, its batch
axis, its metadata, and a module that cannot be exported named."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.structures import DataSample
from torch import nn

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.fileio import check_same_model
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval.encoder import encode

pytest.importorskip('onnx', reason='onnx is an optional extra: '
                    'pip install -e ".[onnx]"')
pytest.importorskip('onnxruntime', reason='onnxruntime is an optional '
                    'extra: pip install -e ".[onnx]"')

from mmqueryopt.deployment import (  # noqa: E402
    RELAXED_TOLERANCE, OnnxExportError, export_onnx, onnx_session,
    random_bgr, read_onnx_meta, run_onnx)
from mmqueryopt.deployment.failure import describe  # noqa: E402

METHODS = ('queryopt', 'a2net', 'a2netpp', 'agmh', 'adsh', 'exchnet',
           'semicon', 'hashnet', 'dpsh', 'csq', 'fish', 'dahnet',
           'queryopt-cls')
# Every method's ResNet-50 model runs at 64x64 (layer4 maps of 2x2): a
# sixth of the 224x224 pixels' cost, the same graph.
SIZE = 64


def encode_path(model, images_bgr):
    """tools/encode.py's codes and relaxed codes of uint8 BGR images."""
    batch = dict(inputs=[torch.from_numpy(image) for image in images_bgr],
                 data_samples=[DataSample(metainfo=dict(img_path=str(i)))
                               for i in range(len(images_bgr))])
    codes, _, _ = encode(model, [batch], progress=False)
    relaxed, _, _ = encode(model, [batch], progress=False, relaxed=True)
    return codes, relaxed


def onnx_outputs(proto, images_bgr):
    """onnxruntime's outputs for the same images, given as RGB floats."""
    rgb = np.ascontiguousarray(images_bgr[:, ::-1]).astype(np.float32)
    return run_onnx(onnx_session(proto.SerializeToString()), rgb)


@pytest.mark.parametrize('method', METHODS)
def test_every_method_gives_the_encode_tools_codes(method):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', method, f'{method}_cub_12bit.py'))
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    # Built without init_weights: random weights, no pretrained download.
    model = MODELS.build(cfg.model).eval()
    # Exported from one image, run on three: the batch axis is free.
    proto = export_onnx(model, (SIZE, SIZE), check=False)
    images = random_bgr(3, SIZE, SIZE, seed=7)
    codes, relaxed = onnx_outputs(proto, images)
    want_codes, want_relaxed = encode_path(model, images)
    assert codes.dtype == np.int8 and codes.shape == (3, 12)
    np.testing.assert_array_equal(codes, want_codes)
    difference = np.abs(relaxed - want_relaxed).max()
    assert difference <= RELAXED_TOLERANCE
    # Equal codes are the export's doing, not luck, only if no relaxed
    # value lies within the two runtimes' difference of 0 (the closest here
    # is ~7e-7 (A2-Net), the differences ~1e-8).
    assert np.abs(want_relaxed).min() > 10 * difference


class _ChannelMeans(nn.Module):
    """(B, 3, H, W) -> (B, 3): each channel's mean, the relaxed codes."""

    def forward(self, inputs):
        return inputs.mean(dim=(2, 3))


class _ToyRetriever(BaseModel):
    """What OnnxEncoder reads from a HashRetriever, around any body."""

    def __init__(self, body: nn.Module, code_length: int = 3, **settings):
        super().__init__(data_preprocessor=ClsDataPreprocessor(**settings))
        self.body = body
        self.code_length = code_length

    def extract_feat(self, inputs):
        return self.body(inputs)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.extract_feat(inputs)


MEAN, STD = (10.0, 20.0, 30.0), (2.0, 4.0, 5.0)


@pytest.mark.parametrize('to_rgb', [False, True])
def test_preprocessing_and_ties_by_hand(to_rgb):
    model = _ToyRetriever(_ChannelMeans(), mean=MEAN, std=STD,
                          to_rgb=to_rgb).eval()
    proto = export_onnx(model, (4, 5), check=False)
    assert 'Sign' not in {node.op_type for node in proto.graph.node}
    # A flat image, RGB (40, 20, 6); the green channel sits exactly at its
    # mean: a relaxed value of exactly 0, whose bit is +1 (ONNX's Sign
    # would give 0).
    rgb = np.empty((1, 3, 4, 5), np.float32)
    rgb[0, 0], rgb[0, 1], rgb[0, 2] = 40, 20, 6
    codes, relaxed = run_onnx(onnx_session(proto.SerializeToString()), rgb)
    f = np.float32
    # to_rgb=False: the model was trained on BGR, so the graph flips RGB.
    seen = (40, 20, 6) if to_rgb else (6, 20, 40)
    want = [(f(v) - f(m)) / f(s) for v, m, s in zip(seen, MEAN, STD)]
    # onnxruntime may divide by std as a product with 1 / std: the last
    # place differs (-4.8000002 for -24 / 5); 0 stays exactly 0.
    np.testing.assert_allclose(relaxed[0], want, rtol=1e-6, atol=0)
    assert relaxed[0, 1] == 0.0
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(
        codes[0], [1 if v >= 0 else -1 for v in want])
    assert set(np.unique(codes)) <= {-1, 1}
    # The encode path on the BGR image agrees bit for bit.
    want_codes, want_relaxed = encode_path(
        model, rgb[:, ::-1].astype(np.uint8))
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_allclose(relaxed, want_relaxed, rtol=1e-6, atol=0)


def test_padding_as_the_data_preprocessor_pads():
    # A 13x10 image padded to 16x16 with -1: the channel means include
    # the padding, as in the encode path (stack_batch pads after
    # normalising).
    model = _ToyRetriever(_ChannelMeans(), mean=MEAN, std=STD, to_rgb=True,
                          pad_size_divisor=8, pad_value=-1).eval()
    proto = export_onnx(model, (13, 10), check=False)
    images = random_bgr(2, 13, 10, seed=3)
    codes, relaxed = onnx_outputs(proto, images)
    rgb = images[:, ::-1].astype(np.float64)
    normalised = (rgb - np.array(MEAN)[:, None, None]) / np.array(STD)[
        :, None, None]
    want = (normalised.sum(axis=(2, 3)) - 1 * (16 * 16 - 13 * 10)) / 256
    np.testing.assert_allclose(relaxed, want, rtol=1e-5)
    np.testing.assert_array_equal(codes, encode_path(model, images)[0])


@pytest.mark.parametrize('dynamo', [False, True])
def test_batch_axis(dynamo):
    """Free by default (a batch of 3 after an export at 1 image, or 2 for
    torch.export), fixed on request."""
    if dynamo:
        pytest.importorskip('onnxscript', reason='--dynamo needs onnxscript')
    model = _ToyRetriever(_ChannelMeans(), mean=MEAN, std=STD,
                          to_rgb=True).eval()
    proto = export_onnx(model, (6, 6), dynamo=dynamo)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 6, 6]
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_value == 3
    for num in (1, 3):
        images = random_bgr(num, 6, 6, seed=num)
        np.testing.assert_array_equal(
            onnx_outputs(proto, images)[0], encode_path(model, images)[0])
    fixed = export_onnx(model, (6, 6), dynamic_batch=False, dynamo=dynamo)
    assert [d.dim_value for d in fixed.graph.input[0].type.tensor_type
            .shape.dim] == [1, 3, 6, 6]


def test_dynamo_keeps_queryopts_batch_free():
    """torch.export fixed QueryOpt's batch axis at 1 when exported from one
    image (no error; onnxruntime then refused 3): the export uses two."""
    pytest.importorskip('onnxscript', reason='--dynamo needs onnxscript')
    cfg = tiny_digits_cfg('unused', 'unused')
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    proto = export_onnx(model, (16, 16), dynamo=True)
    for num in (1, 3):
        images = random_bgr(num, 16, 16, seed=num)
        codes, relaxed = onnx_outputs(proto, images)
        want_codes, want_relaxed = encode_path(model, images)
        np.testing.assert_array_equal(codes, want_codes)
        assert np.abs(relaxed - want_relaxed).max() <= RELAXED_TOLERANCE


def test_metadata_is_the_codes_files_model_meta():
    model = _ToyRetriever(_ChannelMeans(), mean=MEAN, std=STD).eval()
    meta = dict(method='HashRetriever/QueryHashHead', nbits=3,
                weights_sha256='ab' * 32, config='queryopt_cub_12bit')
    proto = export_onnx(model, (4, 4), meta=meta, check=False)
    read = read_onnx_meta(proto)
    assert {key: read[key] for key in meta} == meta
    assert read['image_size'] == '4x4'
    check_same_model(meta, read)
    with pytest.raises(ValueError, match='weights_sha256'):
        check_same_model(dict(meta, weights_sha256='cd' * 32), read)


@MODELS.register_module(force=True)
class KthValuePooling(nn.Module):
    """A median pooling neck: torch.kthvalue has no ONNX conversion in the
    tracing exporter, which fails after tracing, naming only the op."""

    def forward(self, inputs):
        feats = inputs[-1].flatten(2)
        return feats.kthvalue(feats.size(2) // 2 + 1, dim=2).values


class _NumpyTanh(nn.Module):
    """A body that leaves torch for NumPy: tracing would freeze its output
    into a constant of the example image."""

    def forward(self, inputs):
        means = inputs.mean(dim=(2, 3))
        return torch.from_numpy(np.tanh(means.detach().cpu().numpy()))


class _FractionBranch(nn.Module):
    """A Python branch on tensor values, which tracing fixes to the
    example's side: the example's pixels have fractions, images do not."""

    def forward(self, inputs):
        means = inputs.mean(dim=(2, 3))
        if bool((inputs != inputs.round()).any()):
            return means
        return -means


def test_an_unsupported_operator_names_its_module():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/adsh/adsh_digits_12bit.py'))
    cfg.model.neck = dict(type='KthValuePooling')
    init_default_scope('mmqueryopt')
    model = MODELS.build(cfg.model).eval()
    with pytest.raises(OnnxExportError) as error:
        export_onnx(model, (16, 16))
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "module 'neck' (KthValuePooling)" in message
    assert 'kthvalue' in message


def test_a_numpy_detour_names_its_module():
    body = nn.Sequential(nn.Identity(), _NumpyTanh())
    model = _ToyRetriever(body, mean=MEAN, std=STD).eval()
    with pytest.raises(OnnxExportError) as error:
        export_onnx(model, (4, 4))
    assert "module 'body.1' (_NumpyTanh) is not traceable" in str(
        error.value)


def test_a_branch_fixed_by_tracing_is_refused():
    # No normalisation: integer pixels stay integers in the body.
    model = _ToyRetriever(_FractionBranch(), mean=(0, 0, 0),
                          std=(1, 1, 1)).eval()
    with pytest.raises(OnnxExportError, match='disagrees with PyTorch'):
        export_onnx(model, (4, 4))


def test_a_size_the_model_cannot_take_is_one_line():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_digits_12bit.py'))
    init_default_scope('mmqueryopt')
    model = MODELS.build(cfg.model).eval()
    with pytest.raises(OnnxExportError, match=r'does not run on 4x4 images '
                       r'.*--shape H W'):
        export_onnx(model, (4, 4))


def test_a_torch_layer_is_named_with_its_configured_module():
    class Neck(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    root = nn.Module()
    root.model = nn.Module()
    root.model.neck = Neck()
    assert describe(root, 'model.neck.fc', 'model.') == (
        "'neck.fc' (Linear) in 'neck' (Neck)")
    assert describe(root, 'model.neck', 'model.') == "'neck' (Neck)"
