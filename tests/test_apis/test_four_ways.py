"""One query, four ways to search (issue #25): MMPretrain's inferencer, the
exported ONNX model through onnxruntime, the Milvus backend of
``tools/search.py`` and its in-process index give the same Hamming distance
to every gallery image, and the same order (ties in gallery order).

The model and gallery are test_inferencer's: the digits ADSH config with
random weights whose hash layer splits the gallery, so distances vary.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from test_inferencer import K, files, inferencer  # noqa: F401 (fixture)


def run_tool(*args):
    result = subprocess.run([sys.executable, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    return result


def search_json(files, index, out, *extra):  # noqa: F811
    run_tool('tools/search.py', files['config'], files['ckpt'], '--index',
             index, *sum((['--image', q] for q in files['queries']), []),
             '--topk', str(len(files['paths'])), '--out-json', out, *extra)
    with open(out) as f:
        return [[(item['path'], item['distance']) for item in query['results']]
                for query in json.load(f)['queries']]


def rgb_batch(paths):
    return np.stack([
        np.asarray(Image.open(p).convert('RGB')).transpose(2, 0, 1)
        for p in paths
    ]).astype(np.float32)


def test_four_ways_give_the_same_neighbours(files, tmp_path):  # noqa: F811
    pytest.importorskip('onnxruntime', reason='needs pip install -e ".[onnx]"')
    pytest.importorskip('milvus_lite',
                        reason='needs pip install -e ".[milvus]"')
    from mmqueryopt.deployment import onnx_session, run_onnx

    gallery = files['paths']
    codes_file = str(tmp_path / 'gallery.npz')
    run_tool('tools/encode.py', files['config'], files['ckpt'], '--images',
             files['gallery'], '--out', codes_file)

    # 1. The CLI's in-process index, 2. the same through Milvus Lite.
    cli = search_json(files, codes_file, str(tmp_path / 'index.json'))
    milvus = search_json(files, codes_file, str(tmp_path / 'milvus.json'),
                         '--backend', 'milvus', '--uri',
                         str(tmp_path / 'gallery.db'))
    assert milvus == cli

    # 3. MMPretrain's inferencer over the gallery folder.
    results = inferencer(files, files['gallery'])(
        files['queries'], topk=len(gallery))
    mmpretrain = [[(m['sample']['img_path'],
                    K - int(np.ceil(float(m['match_score'])))) for m in row]
                  for row in results]
    assert mmpretrain == cli

    # 4. The ONNX model, run by onnxruntime on RGB pixels, ranked here.
    model_file = str(tmp_path / 'model.onnx')
    height, width = np.asarray(Image.open(gallery[0])).shape[:2]
    run_tool('tools/deployment/pytorch2onnx.py', files['config'],
             files['ckpt'], '--out', model_file, '--shape', str(height),
             str(width))
    session = onnx_session(model_file)
    gallery_codes = run_onnx(session, rgb_batch(gallery))[0]
    query_codes = run_onnx(session, rgb_batch(files['queries']))[0]
    distances = (query_codes[:, None] != gallery_codes[None]).sum(-1)
    onnx = [[(gallery[i], int(row[i])) for i in np.argsort(row, kind='stable')]
            for row in distances]
    assert onnx == cli
    # Not one distance for everything: the ranking is tested.
    assert len(np.unique(distances)) >= 3
