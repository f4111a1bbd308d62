"""tools/analysis_tools/welch_bound.py (Figure 3) and query_similarity.py
(Figure 8) as a user runs them, on tiny digits models trained here with
and without the auxiliary branches: the numbers they write against
independent computations, valid PNGs, and bad input as one line before any
work. Subprocesses import torch and MMPretrain (seconds each), so the main
runs and the refusals after a config is read run that way; the other
refusals call ``main``."""
import argparse
import itertools
import json
import math
import os
import os.path as osp
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from analysis_tools.query_similarity import main as similarity_main
from analysis_tools.welch_bound import main as welch_main
from conftest import REPO, train_tiny_run
from encode import build_dataloader
from mmqueryopt.fileio import load_checkpoint_file
from mmqueryopt.retrieval.encoder import build_encoder, relaxed_bits

WELCH = 'tools/analysis_tools/welch_bound.py'
SIMILARITY = 'tools/analysis_tools/query_similarity.py'
DIMS = [1, 2, 4, 8, 12, 24, 48, 96, 128]


def run_tool(tool, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, tool, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def succeeded(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


def refusal(tool, *args):
    """The one error line of a run that must refuse."""
    proc = run_tool(tool, *args)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def png_size(path):
    with Image.open(path) as img:
        assert img.format == 'PNG'
        img.load()
        return img.size


def cosines(vectors):
    """Pairwise cosines by a loop, float64."""
    vectors = np.asarray(vectors, np.float64)
    n = len(vectors)
    out = np.empty((n, n))
    for i, j in itertools.product(range(n), repeat=2):
        out[i, j] = vectors[i] @ vectors[j] / math.sqrt(
            (vectors[i] @ vectors[i]) * (vectors[j] @ vectors[j]))
    return out


@pytest.fixture(scope='module')
def runs(digits_root, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('figures'))
    return dict(aux=train_tiny_run(digits_root, folder, 'queryopt_aux'),
                noaux=train_tiny_run(digits_root, folder, 'queryopt_noaux',
                                     relaxed_dims=12))


# ---------------------------------------------------------------- Welch

@pytest.fixture(scope='module')
def welch(runs, tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('welch'))
    # The order: the pairs after the lists.
    proc = run_tool(WELCH, '--num-classes', '200', '555', '--dims',
                    *map(str, DIMS), runs['aux'].config, runs['aux'].ckpt,
                    runs['noaux'].config, runs['noaux'].ckpt, '--out-dir',
                    out_dir, '--draws', '2', '--seed', '3', '--device', 'cpu',
                    '--no-progress')
    succeeded(proc)
    with open(osp.join(out_dir, 'welch_bound.json')) as f:
        return json.load(f), out_dir, proc


def test_welch_curves_are_the_closed_form(welch):
    report, out_dir, _ = welch
    assert report['dims'] == DIMS
    # The models' split has 10 classes: their curve is added.
    assert [c['num_classes'] for c in report['curves']] == [200, 555, 10]
    for curve in report['curves']:
        m = curve['num_classes']
        expected = [math.sqrt(Fraction(max(m - d, 0), d * (m - 1)))
                    for d in DIMS]
        assert curve['bound'] == pytest.approx(expected, abs=1e-15)
    assert png_size(osp.join(out_dir, 'welch_bound.png')) == (640, 480)


def test_welch_measures_each_model(welch, runs):
    report, _, proc = welch
    aux, noaux = report['models']
    assert (aux['label'], noaux['label']) == ('queryopt_aux',
                                              'queryopt_noaux')
    assert [(w['name'], w['dims']) for w in aux['widths']] == [
        ('inference', 12), ('training', 96)]
    assert [(w['name'], w['dims']) for w in noaux['widths']] == [
        ('inference', 12)]
    for model in (aux, noaux):
        assert (model['split'], model['num_classes'], model['num_draws'],
                model['seed']) == ('database', 10, 2, 3)
        assert model['head'] == 'QueryHashHead'
        assert 'largest cross-class |cos|' in proc.stdout
    # The aux model's largest cross-class cosine at 12 bits, from its
    # relaxed codes of the drawn images, by brute force.
    cfg = runs['aux'].cfg
    encoder = build_encoder(cfg, runs['aux'].ckpt, 'cpu')
    dataset = build_dataloader(cfg, argparse.Namespace(
        split='database', images=None, batch_size=None,
        num_workers=None)).dataset
    labels = np.asarray(dataset.get_gt_labels())
    width = aux['widths'][0]
    for draw, rows in enumerate(aux['indices']):
        assert sorted(labels[rows]) == list(range(10))
        batch = pseudo_collate([dataset[i] for i in rows])
        with torch.no_grad():
            codes = relaxed_bits(
                encoder, encoder.data_preprocessor(batch, False)['inputs'])
        matrix = np.abs(cosines(codes.numpy()))
        largest = matrix[~np.eye(10, dtype=bool)].max()
        assert width['max_cosine']['draws'][draw] == pytest.approx(
            largest, abs=1e-5)


def welch_refusal(args, out_dir, match):
    with pytest.raises(SystemExit, match=match):
        welch_main(args + ['--out-dir', str(out_dir)])
    assert not osp.exists(out_dir) or not os.listdir(out_dir)


def test_welch_refusals(runs, tmp_path):
    out = tmp_path / 'out'
    welch_refusal(['--dims', '12', '0'], out,
                  r'^error: --dims must be at least 1; got 0$')
    welch_refusal(['--dims', '-4'], out,
                  r'^error: --dims must be at least 1; got -4$')
    welch_refusal(['--num-classes', '200', '1'], out,
                  r'^error: --num-classes must be at least 2 .*got 1$')
    welch_refusal(['--dims', 'twelve'], out,
                  r"^error: --dims takes integers; got 'twelve'$")
    welch_refusal(['--draws', '0'], out, r'^error: --draws must be at least '
                  r'1; got 0$')
    welch_refusal([runs['aux'].config], out,
                  r'^error: models come as CONFIG CHECKPOINT pairs; got 1 '
                  r'paths')
    welch_refusal(['--dims', '12', runs['aux'].config, runs['aux'].ckpt,
                   runs['noaux'].config], out, 'got 3 paths')
    # A missing checkpoint of the second pair: before any model is built.
    welch_refusal([runs['aux'].config, runs['aux'].ckpt,
                   runs['noaux'].config, str(tmp_path / 'none.pth')], out,
                  r'^error: checkpoint file not found: .*none\.pth$')


def test_welch_refusal_as_a_user_sees_it(runs, tmp_path):
    line = refusal(WELCH, '--dims', '12', runs['aux'].config,
                   str(tmp_path / 'missing.pth'), '--out-dir',
                   str(tmp_path / 'out'))
    assert line.endswith('checkpoint file not found: '
                         f'{tmp_path / "missing.pth"}')
    assert not (tmp_path / 'out').exists()
    line = refusal(WELCH, '--num-classes', '1', '--out-dir',
                   str(tmp_path / 'out'))
    assert '--num-classes must be at least 2' in line


# ------------------------------------------------------ query similarity

def test_query_similarity_tool(runs, tmp_path):
    out_dir = str(tmp_path / 'aux')
    proc = run_tool(SIMILARITY, runs['aux'].config, runs['aux'].ckpt,
                    '--out-dir', out_dir, '--device', 'cpu',
                    '--no-progress')
    succeeded(proc)
    assert sorted(os.listdir(out_dir)) == [
        'query_similarity.json', 'query_similarity.png',
        'query_similarity_branches.png']
    with open(osp.join(out_dir, 'query_similarity.json')) as f:
        result = json.load(f)
    assert (result['head'], result['code_length'], result['num_branches'],
            result['split']) == ('QueryHashHead', 12, 8, 'query')
    weight = load_checkpoint_file(runs['aux'].ckpt)['state_dict'][
        'head.query_embed.weight'].double().numpy()
    np.testing.assert_allclose(result['queries']['matrix'], cosines(weight),
                               atol=1e-12)
    rolled = np.concatenate([np.roll(weight, 4 * i, axis=1)
                             for i in range(8)])
    np.testing.assert_allclose(result['branch_queries']['matrix'],
                               cosines(rolled), atol=1e-12)
    attributes = result['attributes']
    assert attributes['num_images'] == 360
    assert [e['label'] for e in attributes['examples']] == [0, 1, 2]
    mean = np.array(attributes['mean']['matrix'])
    assert mean.shape == (12, 12)
    np.testing.assert_allclose(np.diag(mean), 1.0, atol=1e-6)
    assert png_size(osp.join(out_dir, 'query_similarity.png')) == (1580, 340)
    assert png_size(osp.join(out_dir, 'query_similarity_branches.png')) == (
        640, 560)
    assert 'queries: off-diagonal mean |cos|' in proc.stdout


@pytest.fixture
def one_thread():
    """In-process runs on one thread: pytest imported torch before the
    tools' OpenMP wait policy (tools/openmp_env.py) could apply."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_query_similarity_without_branches(runs, tmp_path, one_thread):
    out_dir = str(tmp_path / 'noaux')
    result = similarity_main([
        runs['noaux'].config, runs['noaux'].ckpt, '--out-dir', out_dir,
        '--device', 'cpu', '--no-progress', '--split', 'database',
        '--examples', '1'
    ])
    assert result['num_branches'] == 1 and result['branch_queries'] is None
    assert result['attributes']['num_images'] == 1437
    assert sorted(os.listdir(out_dir)) == ['query_similarity.json',
                                           'query_similarity.png']
    # Three panels: queries, the split's mean, one image.
    assert png_size(osp.join(out_dir, 'query_similarity.png')) == (980, 340)


def test_query_similarity_refusals(runs, tmp_path):
    out = tmp_path / 'out'
    # A head without queries is named, before its checkpoint is read.
    line = refusal(SIMILARITY, 'configs/adsh/adsh_digits_12bit.py',
                   str(tmp_path / 'none.pth'), '--out-dir', str(out))
    assert line == ('error: configs/adsh/adsh_digits_12bit.py: model.head '
                    'is LinearHashHead, which has no learned queries; query '
                    "similarity needs QueryOpt's QueryHashHead (or a "
                    'subclass)')
    with pytest.raises(SystemExit, match=r'^error: .*none\.pth'):
        similarity_main([runs['aux'].config, str(tmp_path / 'none.pth'),
                         '--out-dir', str(out)])
    with pytest.raises(SystemExit, match=r'^error: --examples must be >= 0'):
        similarity_main([runs['aux'].config, runs['aux'].ckpt, '--out-dir',
                         str(out), '--examples', '-1'])
    # Another configuration's checkpoint.
    cfg = runs['aux'].cfg.copy()
    cfg.model.head.code_length = 24
    other = str(tmp_path / 'queryopt_24bit.py')
    cfg.dump(other)
    with pytest.raises(SystemExit, match=r'^error: checkpoint has '
                       r'code_length=12 .*the model 24'):
        similarity_main([other, runs['aux'].ckpt, '--out-dir', str(out)])
    assert not out.exists()
