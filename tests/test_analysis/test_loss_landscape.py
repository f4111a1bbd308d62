"""The loss landscape (QueryOpt Figures 4 and 12; Li et al. 2018) of a tiny
digits model trained here: filter-normalised directions, the centre and a
grid point against losses computed by hand, the tool's files and its
refusals."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.analysis.loss_landscape import (
    available_memory, batch_losses, check_memory, draw_batches, grid_axis,
    landscape_mode, load_batches, memory_estimate, random_direction,
    trainable_weights, training_dataset)
from mmqueryopt.retrieval import build_encoder

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'loss_landscape.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope='module')
def trained(digits_root, tmp_path_factory):
    """A tiny digits model after two rounds, and the tool run on it."""
    tmp = tmp_path_factory.mktemp('landscape')
    cfg = tiny_digits_cfg(digits_root, str(tmp / 'work'), rounds=2,
                          epochs_per_round=1, num_samples=32)
    cfg.default_hooks.checkpoint.interval = 1
    Runner.from_cfg(cfg.copy()).train()
    config = str(tmp / 'tiny_digits.py')
    cfg.dump(config)
    out_dir = tmp / 'out'
    result = run_tool(config, tmp / 'work' / 'epoch_2.pth', '--out-dir',
                      out_dir, '--grid', 3, '--range', 0.5,
                      '--num-batches', 2, '--seed', 3, '--no-progress')
    assert result.returncode == 0, result.stderr
    with open(out_dir / 'loss_landscape_tiny_digits.json') as f:
        report = json.load(f)
    return SimpleNamespace(config=config, ckpt=str(tmp / 'work' /
                                                   'epoch_2.pth'),
                           out_dir=out_dir, report=report, tmp=tmp)


def fresh_model(trained):
    return build_encoder(Config.fromfile(trained.config), trained.ckpt)


def the_batches(trained, model):
    cfg = Config.fromfile(trained.config)
    rows = trained.report['images']
    return load_batches(model, training_dataset(cfg), rows)


def adsh_loss_float64(model, batches):
    """ADSH's loss by its formula (queryopt_facts.md) in float64, from the
    model's relaxed codes and the checkpoint's B, averaged over batches."""
    codes = model.database.codes.double()
    db_labels = model.database.labels
    num_bits, gamma = codes.size(1), model.database.gamma
    totals = []
    with torch.no_grad():
        for inputs, samples in batches:
            relaxed = model.train_outputs(inputs)['relaxed_codes'].double()
            labels = torch.cat([s.gt_label for s in samples])
            omega = torch.tensor([s.sample_idx for s in samples])
            sim = (labels[:, None] == db_labels[None, :]).double()
            n, m = sim.shape
            hash_ = ((num_bits * sim - relaxed @ codes.T)**2).sum() / (
                n * m) / num_bits * 12
            quant = ((relaxed - codes[omega])**2).sum() / (
                n * m) * gamma / num_bits * 12
            totals.append(float(hash_ + quant))
    return float(np.mean(totals))


def test_directions_are_filter_normalised():
    weights = {
        'conv.weight': torch.randn(6, 3, 3, 3) * 0.2,
        'fc.weight': torch.randn(5, 7) * 3.0,
        'table': torch.randn(4, 2, 5),
        'conv.bias': torch.randn(6),
        'norm.weight': torch.ones(7),
    }
    weights['conv.weight'][2] = 0  # a dead filter stays dead
    first = random_direction(weights, torch.Generator().manual_seed(5))
    again = random_direction(weights, torch.Generator().manual_seed(5))
    # The same draw, in weights' order: each normalised filter points
    # along the Gaussian filter it came from.
    gen = torch.Generator().manual_seed(5)
    raw = {name: torch.randn(w.shape, generator=gen)
           for name, w in weights.items()}
    for name, weight in weights.items():
        d = first[name].double().numpy()
        w = weight.double().numpy()
        assert torch.equal(first[name], again[name])
        if weight.dim() == 1:
            assert not d.any(), name
            continue
        r = raw[name].double().numpy()
        for f in range(w.shape[0]):
            assert np.linalg.norm(d[f]) == pytest.approx(
                np.linalg.norm(w[f]), rel=1e-6, abs=1e-9), (name, f)
            if np.linalg.norm(w[f]) > 0:
                cos = (d[f] * r[f]).sum() / (np.linalg.norm(d[f]) *
                                             np.linalg.norm(r[f]))
                assert cos == pytest.approx(1.0, abs=1e-6)
    other = random_direction(weights, torch.Generator().manual_seed(6))
    assert not torch.equal(first['fc.weight'], other['fc.weight'])


def test_directions_of_the_model_cover_its_trainable_weights(trained):
    model = fresh_model(trained)
    weights = trainable_weights(model)
    assert set(weights) == {n for n, p in model.named_parameters()
                            if p.requires_grad}
    direction = random_direction(weights, torch.Generator().manual_seed(0))
    for name, weight in weights.items():
        d, w = direction[name].double(), weight.detach().double()
        if w.dim() == 1:
            assert not d.any()
        else:
            np.testing.assert_allclose(
                [float(d[f].norm()) for f in range(len(w))],
                [float(w[f].norm()) for f in range(len(w))], rtol=1e-5)


def test_centre_is_the_models_own_loss(trained):
    report = trained.report
    model = fresh_model(trained)
    batches = the_batches(trained, model)
    landscape_mode(model, 'eval')
    by_formula = adsh_loss_float64(model, batches)
    with torch.no_grad():
        plain = np.mean([
            float(sum(model.loss(inputs, samples).values()))
            for inputs, samples in batches])
    assert report['centre']['loss'] == pytest.approx(by_formula, rel=1e-5)
    assert report['centre']['loss'] == pytest.approx(plain, rel=1e-6)
    # The middle of an odd grid is the trained weights themselves.
    assert report['alphas'][1] == 0.0 and report['betas'][1] == 0.0
    for term, value in report['centre'].items():
        assert report['values'][term][1][1] == pytest.approx(value,
                                                             rel=1e-6)
    assert report['centre']['loss'] == pytest.approx(
        report['centre']['loss_hash'] + report['centre']['loss_quant'])
    # The batches: the seeded draw of distinct training images.
    assert report['images'] == draw_batches(1437, 2, 16, 3)
    assert len({i for rows in report['images'] for i in rows}) == 32


def test_a_grid_point_is_the_loss_of_the_model_moved_by_hand(trained):
    report = trained.report
    model = fresh_model(trained)
    batches = the_batches(trained, model)
    weights = trainable_weights(model)
    gen = torch.Generator().manual_seed(report['seed'])
    first = random_direction(weights, gen)
    second = random_direction(weights, gen)
    i, j = 0, 2  # beta = -0.5, alpha = +0.5
    alpha, beta = report['alphas'][j], report['betas'][i]
    assert (alpha, beta) == (0.5, -0.5)
    with torch.no_grad():
        for name, param in weights.items():
            param.copy_(param + alpha * first[name] + beta * second[name])
    landscape_mode(model, 'eval')
    moved = adsh_loss_float64(model, batches)
    assert report['values']['loss'][i][j] == pytest.approx(moved, rel=1e-5)
    assert report['values']['loss'][i][j] != pytest.approx(
        report['centre']['loss'], rel=1e-3)


def test_evaluating_leaves_the_model_as_it_was(trained):
    model = fresh_model(trained)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = the_batches(trained, model)
    landscape_mode(model, 'train')  # BatchNorm on batch statistics
    batch_losses(model, batches)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_the_tool_writes_pictures_and_numbers(trained):
    report = trained.report
    assert report['grid'] == 3 and report['range'] == 0.5
    assert report['alphas'] == [-0.5, 0.0, 0.5] == report['betas']
    for term in ('loss', 'loss_hash', 'loss_quant'):
        values = np.array(report['values'][term])
        assert values.shape == (3, 3) and np.isfinite(values).all()
    for suffix in ('contour', 'surface'):
        with Image.open(trained.out_dir /
                        f'loss_landscape_tiny_digits_{suffix}.png') as img:
            assert img.format == 'PNG' and img.size == (640, 560)
    assert not [f for f in os.listdir(trained.out_dir)
                if f.endswith('.tmp')]


def test_memory_estimate_and_refusal():
    weights = {'w': torch.zeros(1000, 250)}  # 1 MB of float32
    need = memory_estimate(weights, 4096, 10)
    assert need['device'] == 3 * 1_000_000 + 4096
    assert need['host'] == 100 * 256
    check_memory(need, dict(host=need['total']), 10)
    with pytest.raises(ValueError, match=r'^--grid 10 needs about .* of '
                       r'host memory'):
        check_memory(need, dict(host=need['total'] - 1), 10)
    with pytest.raises(ValueError, match='GPU memory'):
        check_memory(need, dict(host=10**12, device=need['device'] - 1), 10)
    assert available_memory('cpu')['host'] > 0
    assert grid_axis(4, 1.0) == pytest.approx([-1, -1 / 3, 1 / 3, 1])


@pytest.mark.parametrize('args, expected', [
    (['--grid', '200000'], r'--grid 200000 needs about .* host memory'),
    (['--num-batches', '1000'], r'--num-batches 1000 x --batch-size 16 = '
     r'16000 images, but the training set has 1437'),
])
def test_bad_input_is_one_line(trained, tmp_path, args, expected):
    """As a user runs it: exit status, no traceback, one line naming the
    flag, nothing written."""
    out_dir = tmp_path / 'out'
    result = run_tool(trained.config, trained.ckpt, '--out-dir', out_dir,
                      *args)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('error: ') and re.search(expected, line), line
    assert not out_dir.exists()


@pytest.mark.parametrize('args, expected', [
    (['--grid', '1'], '--grid 1: needs at least 2'),
    (['--range', '0'], '--range 0.0: must be positive'),
    (['--num-batches', '0'], '--num-batches 0: must be at least 1'),
])
def test_impossible_settings_are_refused_first(trained, tmp_path, args,
                                               expected):
    main = tool_main()
    with pytest.raises(SystemExit, match=f'^error: {expected}'):
        main([trained.config, trained.ckpt, '--out-dir',
              str(tmp_path / 'out'), *args])
    assert not (tmp_path / 'out').exists()


def tool_main():
    if osp.dirname(TOOL) not in sys.path:
        sys.path.insert(0, osp.dirname(TOOL))
    from loss_landscape import main
    return main


def test_a_missing_checkpoint_is_one_line(trained, tmp_path):
    main = tool_main()
    with pytest.raises(SystemExit, match=r'nope\.pth'):
        main([trained.config, str(tmp_path / 'nope.pth'), '--out-dir',
              str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()
