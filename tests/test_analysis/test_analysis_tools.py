"""The analysis tools on a digits model trained here (issue #15): attention
figures, per-bit images, code statistics, curves, gathered results and the
visualiser's round losses, PR curves and TensorBoard switch."""
import glob
import json
import os
import os.path as osp
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

from conftest import REPO, tiny_digits_cfg
from encode import main as encode_main
from mmqueryopt.evaluation import HammingMAP
from mmqueryopt.models import QueryHashHead
from mmqueryopt.registry import DATASETS
from mmqueryopt.retrieval import load_codes
from mmqueryopt.retrieval.grid import grid_size

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
from code_stats import main as stats_main  # noqa: E402
from gather_results import main as gather_main  # noqa: E402
from plot_curves import main as curves_main  # noqa: E402
from visualize_attention import main as attention_main  # noqa: E402
from visualize_bits import main as bits_main  # noqa: E402


def train(cfg):
    Runner.from_cfg(cfg.copy()).train()


@pytest.fixture(scope='module')
def run(digits_root, tmp_path_factory):
    """Two tiny rounds, evaluated after each, logged every iteration."""
    tmp = tmp_path_factory.mktemp('analysis')
    root = str(tmp / 'work_dirs')
    work_dir = osp.join(root, 'queryopt_digits_12bit')
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=2,
                          epochs_per_round=1, num_samples=32)
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    # Logged losses are then each iteration's own, not window means.
    cfg.log_processor.window_size = 1
    train(cfg)
    config = str(tmp / 'queryopt_digits_12bit.py')
    cfg.dump(config)
    (run_dir, ) = glob.glob(osp.join(work_dir, '*', 'vis_data'))
    return SimpleNamespace(config=config, root=root, vis_data=run_dir,
                           ckpt=osp.join(work_dir, 'epoch_2.pth'), tmp=tmp)


@pytest.fixture(scope='module')
def encoded(run):
    """Codes files of both splits, by tools/encode.py."""
    files = {}
    for split in ('query', 'database'):
        files[split] = str(run.tmp / f'{split}.npz')
        encode_main([run.config, run.ckpt, '--split', split, '--out',
                     files[split], '--no-progress'])
    return files


def signs(codes_file):
    codes = load_codes(codes_file)
    bits = np.unpackbits(codes.packed, axis=1)[:, :codes.nbits]
    return 2 * bits.astype(np.int64) - 1, codes


def png_size(path):
    with Image.open(path) as img:
        assert img.format == 'PNG'
        img.load()
        return img.size


def scalars(vis_data):
    with open(osp.join(vis_data, 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


# ----------------------------------------------------------- visualiser

def test_round_losses_and_pr_curves_reach_the_backends(run):
    records = scalars(run.vis_data)
    for round_ in (1, 2):
        iters = [r for r in records if 'loss_hash' in r
                 and r['epoch'] == round_]
        assert len(iters) == 2  # 32 samples, batches of 16, one pass
        (summary, ) = [r for r in records if 'round/loss_hash' in r
                       and r['step'] == round_]
        for term in ('loss_hash', 'loss_quant', 'loss'):
            mean = np.mean([r[term] for r in iters])
            assert summary[f'round/{term}'] == pytest.approx(mean, rel=1e-6)
        assert [r['step'] for r in records if 'retrieval/mAP' in r] == [1, 2]
        image = osp.join(run.vis_data, 'vis_image', f'pr_curve_{round_}.png')
        assert png_size(image) == (640, 480)


def test_tensorboard_switch(digits_root, tmp_path, monkeypatch):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'), rounds=1,
                          epochs_per_round=1, num_samples=16)
    cfg.train_cfg.val_interval = 1
    cfg.visualizer.tensorboard = True
    train(cfg)
    (events, ) = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' /
                               'events.out.tfevents.*'))
    log = EventAccumulator(events, size_guidance={'images': 0})
    log.Reload()
    assert 'round/loss_hash' in log.Tags()['scalars']
    assert 'retrieval/mAP' in log.Tags()['scalars']
    (image, ) = log.Images('pr_curve')
    assert (image.step, image.width, image.height) == (1, 640, 480)


def test_tensorboard_switch_without_the_package(tmp_path, monkeypatch):
    from mmqueryopt.analysis import HashingVisualizer
    monkeypatch.setitem(sys.modules, 'tensorboard', None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[tens'):
        HashingVisualizer(name='no_tensorboard', tensorboard=True,
                          save_dir=str(tmp_path))


# ------------------------------------------------------------ attention

def test_attention_figures(run, tmp_path):
    cfg = Config.fromfile(run.config)
    queries = DATASETS.build(cfg.test_dataloader.dataset)
    images = [queries.get_data_info(n)['img_path'] for n in (0, 1)]
    out_dir = str(tmp_path / 'attention')
    written = attention_main([
        run.config, run.ckpt, '--image', images[0], '--image', images[1],
        '--bits', '0', '5', '11', '--out-dir', out_dir, '--thumb-size',
        '48', '--device', 'cpu'
    ])
    stems = [osp.splitext(osp.basename(p))[0] for p in images]
    assert [osp.basename(p) for p in written] == [
        f'000_{stems[0]}.png', f'001_{stems[1]}.png']
    for path in written:
        assert png_size(path) == grid_size(1 + 3, 48, 7)
    (all_bits, ) = attention_main([run.config, run.ckpt, '--image',
                                   images[0], '--out-dir', out_dir])
    assert png_size(all_bits) == grid_size(1 + 12, 128, 7)


def test_attention_refusals(run, tmp_path, monkeypatch, capsys):
    cfg = Config.fromfile(run.config)
    image = DATASETS.build(cfg.test_dataloader.dataset).get_data_info(0)[
        'img_path']
    args = [run.config, run.ckpt, '--image', image, '--out-dir',
            str(tmp_path)]
    with pytest.raises(SystemExit, match=r'--bits \[12\] out of range.*'
                       r'12 maps'):
        attention_main(args + ['--bits', '12'])
    # A method with no maps: the retriever finds none on neck or head.
    monkeypatch.delattr(QueryHashHead, 'attention_maps')
    with pytest.raises(SystemExit, match='no attention maps.*neither '
                       'SubtleFeatureNeck nor QueryHashHead'):
        attention_main(args)
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------- bits

@pytest.fixture(scope='module')
def bits_run(run):
    out_dir = str(run.tmp / 'bits')
    relaxed = str(run.tmp / 'relaxed.npz')
    report = bits_main([
        run.config, run.ckpt, '--split', 'query', '--bits', '0', '3',
        '--top', '4', '--thumb-size', '32', '--out-dir', out_dir,
        '--save-relaxed', relaxed
    ])
    return report, out_dir, relaxed


def test_bits_show_the_strongest_images_and_classes(bits_run, encoded):
    report, out_dir, relaxed_file = bits_run
    with np.load(relaxed_file) as f:
        relaxed, paths, labels = (f['relaxed_codes'], list(f['paths']),
                                  f['labels'])
    # The relaxed codes' signs are the model's binary codes (encode.py).
    codes, query = signs(encoded['query'])
    np.testing.assert_array_equal(np.where(relaxed >= 0, 1, -1), codes)
    assert paths == list(query.paths)
    np.testing.assert_array_equal(labels, query.labels)
    assert [b['bit'] for b in report['bits']] == [0, 3]
    for entry in report['bits']:
        j = entry['bit']
        assert png_size(osp.join(out_dir, f'bit_{j:02d}.png')) == grid_size(
            8, 32, 4)
        values = relaxed[:, j].tolist()
        order = sorted(range(len(values)), key=lambda i: (-values[i], i))
        plus = [i for i in order if values[i] >= 0][:4]
        minus = [i for i in sorted(range(len(values)),
                                   key=lambda i: (values[i], i))
                 if values[i] < 0][:4]
        assert [x['path'] for x in entry['+1']['images']] == [
            paths[i] for i in plus]
        assert [x['path'] for x in entry['-1']['images']] == [
            paths[i] for i in minus]
        assert entry['fraction_plus'] == pytest.approx(
            np.mean(codes[:, j] > 0))
        fractions = {}
        for c in sorted(set(labels.tolist())):
            members = [codes[i, j] for i in range(len(codes))
                       if labels[i] == c]
            fractions[c] = sum(v > 0 for v in members) / len(members)
        top = sorted(fractions, key=lambda c: (-fractions[c], c))[:3]
        assert [(x['label'], x['fraction']) for x in
                entry['+1']['classes']] == [(c, pytest.approx(fractions[c]))
                                            for c in top]
        bottom = sorted(fractions, key=lambda c: (fractions[c], c))[:3]
        assert [x['label'] for x in entry['-1']['classes']] == bottom
    with open(osp.join(out_dir, 'bits.json')) as f:
        assert json.load(f) == json.loads(json.dumps(report))


# ---------------------------------------------------------- code stats

def brute_stats(codes, labels):
    """Balance, correlations and distance counts by loops, float64."""
    n, k = codes.shape
    x = codes.astype(np.float64)
    balance = [(x[:, j] > 0).sum() / n for j in range(k)]
    corr = np.full((k, k), np.nan)
    for a in range(k):
        for b in range(k):
            cov = (x[:, a] * x[:, b]).mean() - x[:, a].mean() * x[:, b].mean()
            std = x[:, a].std() * x[:, b].std()
            if std > 0:
                corr[a, b] = cov / std
    intra, inter = np.zeros(k + 1, int), np.zeros(k + 1, int)
    for i in range(n):
        dist = (codes[i + 1:] != codes[i]).sum(axis=1)
        same = labels[i + 1:] == labels[i]
        intra += np.bincount(dist[same], minlength=k + 1)
        inter += np.bincount(dist[~same], minlength=k + 1)
    distinct = len({tuple(row) for row in codes.tolist()})
    return balance, corr, intra, inter, distinct


def test_code_stats_of_relaxed_codes(bits_run, tmp_path):
    relaxed_file = bits_run[2]
    plot_dir, out_json = str(tmp_path / 'plots'), str(tmp_path / 's.json')
    stats = stats_main([relaxed_file, '--plot', plot_dir, '--out-json',
                        out_json])
    with np.load(relaxed_file) as f:
        relaxed, labels = f['relaxed_codes'].astype(np.float64), f['labels']
    codes = np.where(relaxed >= 0, 1, -1)
    balance, corr, intra, inter, distinct = brute_stats(codes, labels)
    assert stats['num_items'] == 360 and stats['nbits'] == 12
    np.testing.assert_allclose(stats['balance'], balance, rtol=0,
                               atol=1e-12)
    got = np.array([[np.nan if v is None else v for v in row]
                    for row in stats['correlation']])
    np.testing.assert_allclose(got, corr, rtol=0, atol=1e-9)
    assert stats['hamming']['intra'] == intra.tolist()
    assert stats['hamming']['inter'] == inter.tolist()
    assert sum(intra) + sum(inter) == 360 * 359 // 2
    assert stats['distinct_codes'] == distinct
    assert stats['distinct_fraction'] == pytest.approx(distinct / 360)
    quant = np.mean([(np.sign(u) - u)**2 if u != 0 else 1.0
                     for u in relaxed.ravel()])
    assert stats['quantization_error'] == pytest.approx(quant, rel=1e-9)
    with open(out_json) as f:
        saved = json.load(f)
    assert saved['balance'] == stats['balance']
    for name in ('balance', 'correlation', 'hamming'):
        assert png_size(osp.join(plot_dir, f'{name}.png')) == (640, 480)


def test_code_stats_of_a_codes_file(encoded, tmp_path):
    stats = stats_main([encoded['database'], '--max-pair-items', '300'])
    codes, database = signs(encoded['database'])
    np.testing.assert_allclose(stats['balance'], (codes > 0).mean(axis=0))
    assert 'quantization_error' not in stats
    # 1,437 images: the histograms count the pairs of 300 of them.
    assert stats['hamming']['pairs_from'] == 300
    assert sum(stats['hamming']['intra']) + sum(
        stats['hamming']['inter']) == 300 * 299 // 2
    bad = str(tmp_path / 'other.npz')
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(SystemExit, match=r"other\.npz.*holds none of"):
        stats_main([bad])


# --------------------------------------------------------------- curves

def write_dump(path, query_codes, query_labels, db_codes, db_labels):
    """A dump written by HammingMAP itself."""
    metric = HammingMAP(dump_file=path)
    metric.set_database(torch.as_tensor(db_codes, dtype=torch.float32),
                        torch.as_tensor(db_labels))
    metric.process(None, [
        dict(hash_code=torch.as_tensor(c, dtype=torch.float32),
             gt_label=torch.as_tensor([int(label)]))
        for c, label in zip(query_codes, query_labels)
    ])
    return metric.evaluate(len(query_codes))


def brute_precision_at(query, db, query_labels, db_labels, n):
    values = []
    for code, label in zip(query, query_labels):
        dist = (db != code).sum(axis=1)
        top = np.argsort(dist, kind='stable')[:n]
        values.append((db_labels[top] == label).mean())
    return float(np.mean(values))


def test_plot_curves(encoded, tmp_path):
    query, q = signs(encoded['query'])
    db, d = signs(encoded['database'])
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(query.shape) < 0.2, -query, query)
    good, worse = str(tmp_path / 'good.npz'), str(tmp_path / 'worse.npz')
    write_dump(good, query, q.labels, db, d.labels)
    write_dump(worse, noisy, q.labels, db, d.labels)
    out, out_json = str(tmp_path / 'pr.png'), str(tmp_path / 'c.json')
    curves = curves_main([good, worse, '--out', out, '--ns', '1', '10',
                          '100', '--out-json', out_json])
    assert png_size(out) == (1280, 480)
    assert [c['name'] for c in curves] == ['good', 'worse']
    for curve, codes in zip(curves, (query, noisy)):
        for n, value in zip(curve['ns'], curve['precision_at_n']):
            assert value == pytest.approx(brute_precision_at(
                codes, db, q.labels, d.labels, n), abs=1e-12)
        with np.load(curve['file']) as dump:
            assert curve['pr_precision'] == dump['pr_precision'].tolist()
            assert curve['pr_recall'] == dump['pr_recall'].tolist()
    # The PR curve at radius k retrieves everything: recall 1.
    assert curves[0]['pr_recall'][-1] == pytest.approx(1.0)
    # A folder stands for its dumps, in name order; defaults to 20 N.
    folder = curves_main([str(tmp_path), '--out', str(tmp_path / 'f.png')])
    assert [c['name'] for c in folder] == ['good', 'worse']
    assert folder[0]['ns'][:3] == [1, 50, 100]
    assert folder[0]['ns'][-1] == 1000


def test_plot_curves_refuses_mixed_code_lengths(encoded, tmp_path):
    query, q = signs(encoded['query'])
    db, d = signs(encoded['database'])
    full, short = str(tmp_path / 'k12.npz'), str(tmp_path / 'k8.npz')
    write_dump(full, query, q.labels, db, d.labels)
    write_dump(short, query[:, :8], q.labels, db[:, :8], d.labels)
    with pytest.raises(SystemExit, match=r"k12\.npz': 12 bits, .*k8\.npz'"
                       r": 8 bits"):
        curves_main([full, short, '--out', str(tmp_path / 'x.png')])
    assert not osp.exists(tmp_path / 'x.png')


# --------------------------------------------------------------- gather

def test_gather_results(run, tmp_path):
    # The evaluations as the text log printed them (4 decimals).
    (log_file, ) = glob.glob(osp.join(osp.dirname(run.vis_data), '*.log'))
    with open(log_file) as f:
        logged = [float(v) for v in re.findall(
            r'retrieval/mAP: ([0-9.]+)', f.read())]
    assert len(logged) == 2
    # A second, made-up CUB run with the paper's setting.
    other = tmp_path / 'work_dirs' / 'queryopt_cub_12bit' / '20260101_000000'
    os.makedirs(other / 'vis_data')
    Config(dict(model=dict(head=dict(code_length=12)))).dump(
        str(other / 'vis_data' / 'config.py'))
    with open(other / 'vis_data' / 'scalars.json', 'w') as f:
        for step, value in ((5, 0.70), (10, 0.7312), (15, 0.7290)):
            f.write(json.dumps({'retrieval/mAP': value, 'step': step}) + '\n')
        f.write(json.dumps({'loss': 1.0, 'step': 20}) + '\n')
    os.symlink(osp.dirname(osp.dirname(run.vis_data)),
               tmp_path / 'work_dirs' / 'queryopt_digits_12bit')
    out = str(tmp_path / 'results.md')
    rows = gather_main([str(tmp_path / 'work_dirs'), '--out', out])
    cub, digits = rows
    assert (cub['method'], cub['dataset'], cub['bits']) == ('queryopt',
                                                            'cub', 12)
    assert cub['best_map'] == pytest.approx(73.12)
    assert cub['round'] == 10 and cub['paper'] == 72.19
    assert cub['difference'] == pytest.approx(73.12 - 72.19)
    assert (digits['dataset'], digits['bits'], digits['paper']) == (
        'digits', 12, None)
    assert digits['best_map'] == pytest.approx(100 * max(logged), abs=6e-3)
    with open(out) as f:
        table = f.read()
    assert '| queryopt | cub | 12 | 73.12 | 10 | 72.19 | +0.93 | 1 |' in table
    assert f'| queryopt | digits | 12 | {digits["best_map"]:.2f} |' in table
    with pytest.raises(SystemExit, match='no training run'):
        gather_main([str(tmp_path / 'work_dirs' / 'queryopt_cub_12bit' /
                         '20260101_000000' / 'vis_data')])
