"""t-SNE of the relaxed codes (QueryOpt Figure 13) of two tiny digits models
trained here, with and without the auxiliary branch: the images chosen as
MMPretrain's vis_tsne.py chooses them, the features the models' relaxed
bits, a fixed seed reproducible, the tool's files and refusals."""
import json
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from PIL import Image

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.analysis.tsne import check_perplexity, embed, select_samples
from mmqueryopt.registry import DATASETS
from mmqueryopt.retrieval import build_encoder

TOOL = osp.join(REPO, 'tools', 'visualization', 'vis_tsne.py')
TSNE_ARGS = ['--max-num-class', '3', '--max-num-samples', '10',
             '--perplexity', '5', '--n-iter', '250', '--seed', '7']


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def tool_main():
    if osp.dirname(TOOL) not in sys.path:
        sys.path.insert(0, osp.dirname(TOOL))
    from vis_tsne import main
    return main


@pytest.fixture(scope='module')
def models(digits_root, tmp_path_factory):
    """Two tiny digits models (96 relaxed bits: 8 branches; 12: none) and
    the tool run on both."""
    tmp = tmp_path_factory.mktemp('tsne')
    pairs = []
    for name, relaxed_dims in (('aux', 96), ('noaux', 12)):
        cfg = tiny_digits_cfg(digits_root, str(tmp / name), rounds=1,
                              epochs_per_round=1, num_samples=32)
        cfg.model.head.relaxed_dims = relaxed_dims
        cfg.default_hooks.checkpoint.interval = 1
        Runner.from_cfg(cfg.copy()).train()
        config = str(tmp / f'tiny_{name}.py')
        cfg.dump(config)
        pairs += [config, str(tmp / name / 'epoch_1.pth')]
    out_dir = tmp / 'out'
    result = run_tool(*pairs, '--out-dir', out_dir, '--names', 'with A',
                      'without A', *TSNE_ARGS)
    assert result.returncode == 0, result.stderr
    with open(out_dir / 'tsne.json') as f:
        report = json.load(f)
    return SimpleNamespace(pairs=pairs, out_dir=out_dir, report=report)


def test_select_samples_as_mmpretrain():
    labels = [2, 0, 1, 0, 3, 0, 1, 2, 0, 1]
    # The first two classes (0 and 1), at most two images each.
    assert select_samples(labels, None, 2, 2) == [1, 2, 3, 6]
    assert select_samples(labels, [3, 2], 20, 1) == [0, 4]
    assert select_samples(labels, None, 20, 100) == list(range(10))


def test_perplexity_needs_more_points():
    check_perplexity(4.5, 5, 'here')
    with pytest.raises(ValueError, match=r'^--perplexity 5 needs more than '
                       r'5 points, but here gives 5'):
        check_perplexity(5, 5, 'here')


def test_embedding_is_reproducible():
    features = np.random.default_rng(0).normal(size=(40, 12))
    first = embed(features, perplexity=5, max_iter=250, seed=3)
    assert first.shape == (40, 2)
    np.testing.assert_array_equal(first, embed(features, perplexity=5,
                                               max_iter=250, seed=3))
    assert not np.allclose(first, embed(features, perplexity=5,
                                        max_iter=250, init='random',
                                        seed=4))


def test_points_are_the_tsne_of_each_models_relaxed_codes(models):
    report = models.report
    assert [p['name'] for p in report['panels']] == ['with A', 'without A']
    assert [p['relaxed_dims'] for p in report['panels']] == [96, 12]
    for panel, config, ckpt in zip(report['panels'], models.pairs[0::2],
                                   models.pairs[1::2]):
        cfg = Config.fromfile(config)
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        labels = dataset.get_gt_labels()
        # MMPretrain's choice by hand: the first 10 test images of each of
        # classes 0, 1, 2, in dataset order.
        expected = sorted(i for c in (0, 1, 2)
                          for i in np.flatnonzero(labels == c)[:10])
        assert panel['indices'] == expected
        assert panel['labels'] == labels[expected].tolist()
        assert panel['paths'] == [dataset.get_data_info(i)['img_path']
                                  for i in expected]
        # The relaxed bits of branch 0, image by image, in eval mode.
        model = build_encoder(cfg, ckpt)
        with torch.no_grad():
            codes = np.concatenate([
                model.extract_feat(model.data_preprocessor(
                    pseudo_collate([dataset[i]]), False)['inputs']).numpy()
                for i in expected])
        assert codes.shape == (30, 12)
        np.testing.assert_allclose(panel['relaxed_codes'], codes, atol=1e-6)
        points = embed(np.array(panel['relaxed_codes']), perplexity=5,
                       max_iter=250, seed=7)
        np.testing.assert_array_equal(np.array(panel['points']), points)
    with Image.open(models.out_dir / 'tsne.png') as img:
        assert img.format == 'PNG' and img.size == (1000, 500)


def test_a_fixed_seed_gives_the_same_points(models, tmp_path):
    again = tool_main()(models.pairs[:2] + ['--out-dir', str(tmp_path)] +
                        TSNE_ARGS)
    assert again['panels'][0]['points'] == models.report['panels'][0][
        'points']
    assert again['panels'][0]['labels'] == models.report['panels'][0][
        'labels']


def test_too_few_points_for_the_perplexity_is_one_line(models, tmp_path):
    result = run_tool(*models.pairs[:2], '--out-dir', tmp_path / 'out',
                      '--max-num-class', '2', '--max-num-samples', '5')
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('error: --perplexity 30 needs more than 30 '
                           'points, but the query split of ')
    assert line.endswith('gives 10: lower --perplexity or raise '
                         '--max-num-samples / --max-num-class')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, expected', [
    (['a.py'], 'expected CONFIG CHECKPOINT pairs, got 1 paths'),
    (['a.py', 'a.pth', '--names', 'x', 'y'], '--names gives 2 titles for '
     '1 CONFIG CHECKPOINT pairs'),
    (['a.py', 'a.pth', '--n-iter', '100'], '--n-iter 100: scikit-learn '
     'needs at least 250'),
    (['a.py', 'a.pth', '--learning-rate', 'fast'], "--learning-rate "
     "'fast': a number or 'auto'"),
])
def test_bad_arguments_are_one_line(tmp_path, args, expected):
    with pytest.raises(SystemExit, match=f'^error: {expected}'):
        tool_main()(args + ['--out-dir', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_a_missing_config_is_one_line(models, tmp_path):
    with pytest.raises(SystemExit, match=r'^error: .*missing\.py'):
        tool_main()([str(tmp_path / 'missing.py'), models.pairs[1],
                     '--out-dir', str(tmp_path / 'out')])
