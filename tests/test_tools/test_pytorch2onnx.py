"""tools/deployment/pytorch2onnx.py as a user runs it: the graph's codes,
run with onnxruntime and numpy only, equal tools/encode.py's codes file
bit for bit and carry its model meta; bad input is one line and leaves no
file."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from conftest import REPO
from mmqueryopt.fileio import check_same_model, file_sha256
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval import load_codes

pytest.importorskip('onnx', reason='onnx is an optional extra: '
                    'pip install -e ".[onnx]"')
ort = pytest.importorskip('onnxruntime', reason='onnxruntime is an optional '
                          'extra: pip install -e ".[onnx]"')

from mmqueryopt.deployment import read_onnx_meta  # noqa: E402

TOOL = osp.join(REPO, 'tools/deployment/pytorch2onnx.py')
DIGITS = 'configs/queryopt/queryopt_digits_12bit.py'
ADSH_DIGITS = 'configs/adsh/adsh_digits_12bit.py'
# A neck with an operator that tracing cannot convert (torch.kthvalue),
# registered by the config's custom_imports as a user's module would be.
UNTRACEABLE_NECK = '''
from torch import nn

from mmqueryopt.registry import MODELS


@MODELS.register_module()
class KthValuePooling(nn.Module):

    def forward(self, inputs):
        feats = inputs[-1].flatten(2)
        return feats.kthvalue(feats.size(2) // 2 + 1, dim=2).values
'''


def run_tool(*args, env_path=()):
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([*env_path, REPO]))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def random_checkpoint(config: str, path: str) -> str:
    """A checkpoint of the config's model at random init (seed 0)."""
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope('mmqueryopt')
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def digits_images(digits_root, tmp_path_factory):
    """Six 16x16 digits from three classes."""
    folder = tmp_path_factory.mktemp('onnx_images')
    classes = sorted(os.listdir(osp.join(digits_root, 'images')))[:3]
    for name in classes:
        files = sorted(os.listdir(osp.join(digits_root, 'images', name)))
        for file in files[:2]:
            shutil.copy(osp.join(digits_root, 'images', name, file),
                        folder / f'{name}_{file}')
    return str(folder)


def test_codes_equal_the_encode_tools_codes_file(digits_images, tmp_path):
    ckpt = random_checkpoint(DIGITS, str(tmp_path / 'digits.pth'))
    onnx_file = str(tmp_path / 'out' / 'digits.onnx')
    proc = run_tool(TOOL, DIGITS, ckpt, '--out', onnx_file, '--shape', '16',
                    '16', '--verify', digits_images)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'verify: 6 images x 12 bits: 0 codes bits differ' in proc.stderr
    codes_file = str(tmp_path / 'codes.npz')
    proc = run_tool('tools/encode.py', DIGITS, ckpt, '--images',
                    digits_images, '--out', codes_file, '--device', 'cpu',
                    '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    gallery = load_codes(codes_file)

    # What docs/deployment.md tells a user to do: onnxruntime and numpy.
    session = ort.InferenceSession(onnx_file,
                                   providers=['CPUExecutionProvider'])
    images = np.stack([
        np.asarray(Image.open(path).convert('RGB'), np.float32)
        .transpose(2, 0, 1) for path in gallery.paths
    ])
    codes, relaxed = session.run(['codes', 'relaxed'], {'images': images})
    assert codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}
    np.testing.assert_array_equal(np.packbits(codes > 0, axis=1),
                                  gallery.packed)
    np.testing.assert_array_equal(codes >= 0, relaxed >= 0)

    meta = read_onnx_meta(onnx_file)
    assert meta['weights_sha256'] == file_sha256(ckpt)
    assert meta['nbits'] == 12 and meta['config'] == 'queryopt_digits_12bit'
    assert meta['method'] == 'HashRetriever/QueryHashHead'
    check_same_model(gallery.meta, meta)
    assert os.listdir(tmp_path / 'out') == ['digits.onnx']


def assert_one_line_error(proc, out_dir):
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    # Nothing written, not even a temporary file.
    assert not osp.exists(out_dir) or os.listdir(out_dir) == []
    return lines[0]


def test_missing_checkpoint(tmp_path):
    missing = str(tmp_path / 'missing.pth')
    line = assert_one_line_error(
        run_tool(TOOL, DIGITS, missing, '--out',
                 str(tmp_path / 'out' / 'm.onnx'), '--shape', '16', '16'),
        tmp_path / 'out')
    assert missing in line


def test_a_config_that_fixes_no_size_needs_shape(tmp_path):
    ckpt = random_checkpoint(DIGITS, str(tmp_path / 'digits.pth'))
    line = assert_one_line_error(
        run_tool(TOOL, DIGITS, ckpt, '--out',
                 str(tmp_path / 'out' / 'm.onnx')), tmp_path / 'out')
    assert DIGITS in line and '--shape H W' in line


def test_an_untraceable_module_is_named(tmp_path):
    (tmp_path / 'untraceable_neck.py').write_text(UNTRACEABLE_NECK)
    config = tmp_path / 'adsh_kth.py'
    config.write_text(
        f"_base_ = ['{osp.join(REPO, ADSH_DIGITS)}']\n"
        f"custom_imports = dict(imports=['untraceable_neck'])\n"
        f"model = dict(neck=dict(_delete_=True, type='KthValuePooling'))\n")
    # Parameter-free neck: the ADSH digits model's weights fit.
    ckpt = random_checkpoint(ADSH_DIGITS, str(tmp_path / 'adsh.pth'))
    line = assert_one_line_error(
        run_tool(TOOL, str(config), ckpt, '--out',
                 str(tmp_path / 'out' / 'm.onnx'), '--shape', '16', '16',
                 env_path=[str(tmp_path)]), tmp_path / 'out')
    assert ("module 'neck' (KthValuePooling) is not traceable" in line
            and 'aten::kthvalue' in line), line


def test_without_the_onnx_extra(tmp_path):
    # An onnxruntime that fails to import, first on the path: as if the
    # extra were not installed.
    fake = tmp_path / 'fake' / 'onnxruntime'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text("raise ImportError('not here')\n")
    line = assert_one_line_error(
        run_tool(TOOL, DIGITS, 'any.pth', '--out',
                 str(tmp_path / 'out' / 'm.onnx'),
                 env_path=[str(tmp_path / 'fake')]), tmp_path / 'out')
    assert line == ('error: ONNX export needs onnxruntime: '
                    'pip install -e ".[onnx]"')
