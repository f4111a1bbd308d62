"""The Welch bound of QueryOpt's Figure 3 (mmqueryopt.analysis.welch):
the closed form by hand, frames that attain it, and the largest
cross-class cosine of a tiny trained digits model against a brute-force
computation from its relaxed codes."""
import argparse
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from PIL import Image

from conftest import one_thread_encoder, train_tiny_run
from encode import build_dataloader
from mmqueryopt.analysis.welch import (bound_curves, branch_bits,
                                       cross_cosines, measure_codes,
                                       measure_model, one_per_class,
                                       plot_welch, welch_bound)
from mmqueryopt.retrieval.encoder import relaxed_bits


def exact_bound(m, d):
    """sqrt((M - d) / (d (M - 1))) from exact fractions, 0 for M <= d."""
    return math.sqrt(Fraction(max(m - d, 0), d * (m - 1)))


def brute_max_cos(vectors):
    """Largest |cos| over pairs i < j, by a Python loop in float64."""
    vectors = np.asarray(vectors, np.float64)
    best = 0.0
    for i, j in itertools.combinations(range(len(vectors)), 2):
        a, b = vectors[i], vectors[j]
        best = max(best, abs(float(a @ b)) /
                   math.sqrt(float(a @ a) * float(b @ b)))
    return best


# ---------------------------------------------------------------- bound

@pytest.mark.parametrize('m, d, expected', [
    (3, 2, 0.5),  # sqrt(1 / 4)
    (4, 2, math.sqrt(1 / 3)),  # sqrt(2 / 6)
    (6, 3, 1 / math.sqrt(5)),  # sqrt(3 / 15)
    (200, 12, math.sqrt(188 / 2388)),
    (555, 1, 1.0),  # on a line every pair is parallel
    (10, 10, 0.0),  # M <= d: orthogonal vectors exist
    (10, 12, 0.0),
])
def test_bound_by_hand(m, d, expected):
    assert float(welch_bound(m, d)) == pytest.approx(expected, abs=1e-15)
    assert float(welch_bound(m, d)) == pytest.approx(exact_bound(m, d),
                                                     abs=1e-15)


def test_bound_broadcasts_and_falls_with_the_dimension():
    classes, dims = np.array([100, 200, 555]), np.arange(1, 129)
    grid = welch_bound(classes[:, None], dims[None, :])
    assert grid.dtype == np.float64 and grid.shape == (3, 128)
    for row, m in zip(grid, classes):
        assert row.tolist() == pytest.approx(
            [exact_bound(int(m), int(d)) for d in dims], abs=1e-15)
        positive = row[dims < m]
        assert np.all(np.diff(positive) < 0)
    assert np.all(grid[0, 99:] == 0)  # M = 100 from d = 100 on
    curves = bound_curves([10, 200], [1, 12, 96])
    assert curves == [
        dict(num_classes=10, bound=[1.0, 0.0, 0.0]),
        dict(num_classes=200, bound=[
            1.0, exact_bound(200, 12), exact_bound(200, 96)])
    ]


def simplex(d):
    """d + 1 unit vectors in R^d with pairwise cosine -1/d: the centred
    standard basis of R^(d+1), written in a basis of its hyperplane."""
    centred = np.eye(d + 1) - 1.0 / (d + 1)
    basis = np.linalg.svd(centred)[2][:d]  # rows span the hyperplane
    return centred @ basis.T


@pytest.mark.parametrize('d', [1, 2, 3, 5, 12])
def test_a_simplex_attains_the_bound(d):
    vectors = simplex(d)
    assert vectors.shape == (d + 1, d)
    pairs = cross_cosines(vectors)
    np.testing.assert_allclose(pairs, 1.0 / d, rtol=1e-12)
    assert float(welch_bound(d + 1, d)) == pytest.approx(1.0 / d, rel=1e-14)


def test_the_icosahedron_diagonals_attain_the_bound():
    # Six lines through opposite vertices of an icosahedron: an
    # equiangular tight frame of R^3, every |cos| = 1/sqrt(5).
    phi = (1 + math.sqrt(5)) / 2
    vectors = [(0, 1, phi), (0, 1, -phi), (1, phi, 0), (1, -phi, 0),
               (phi, 0, 1), (-phi, 0, 1)]
    pairs = cross_cosines(vectors)
    np.testing.assert_allclose(pairs, 1 / math.sqrt(5), rtol=1e-12)
    assert float(welch_bound(6, 3)) == pytest.approx(1 / math.sqrt(5),
                                                     rel=1e-14)


def test_orthonormal_vectors_attain_zero():
    assert cross_cosines(np.eye(12)[:10]).max() == 0
    assert float(welch_bound(10, 12)) == 0


def test_random_vectors_never_beat_the_bound():
    rng = np.random.default_rng(0)
    for m, d in [(10, 4), (50, 12), (200, 12), (200, 96), (30, 29)]:
        pairs = cross_cosines(rng.standard_normal((m, d)))
        bound = float(welch_bound(m, d))
        # The proof's mean of squares is bounded too, not only the max.
        assert np.sqrt(np.mean(pairs**2)) >= bound - 1e-12
        assert pairs.max() >= bound


def test_cross_cosines_against_a_loop():
    vectors = np.random.default_rng(1).standard_normal((9, 5))
    pairs = cross_cosines(vectors)
    assert pairs.shape == (36, )
    expected = [
        abs(vectors[i] @ vectors[j]) /
        (np.linalg.norm(vectors[i]) * np.linalg.norm(vectors[j]))
        for i, j in itertools.combinations(range(9), 2)
    ]
    np.testing.assert_allclose(pairs, expected, rtol=1e-13)
    assert pairs.max() == pytest.approx(brute_max_cos(vectors), rel=1e-13)


def test_refusals():
    with pytest.raises(ValueError, match='at least 2 vectors; got M = 1'):
        welch_bound(1, 3)
    with pytest.raises(ValueError, match='dimension of at least 1; got '
                       'd = 0'):
        welch_bound(5, [3, 0])
    with pytest.raises(ValueError, match='row 1 of the codes is zero'):
        cross_cosines([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])


def test_one_per_class():
    labels = np.array([3, 0, 3, 1, 0, 3, 1, 1, 0, 3])
    draws = one_per_class(labels, 50, seed=7)
    assert draws.shape == (50, 3) and draws.dtype == np.int64
    # Column c holds images of the c-th class, and every image is drawn.
    for column, cls in zip(draws.T, (0, 1, 3)):
        assert np.all(labels[column] == cls)
        assert set(column) == set(np.flatnonzero(labels == cls))
    np.testing.assert_array_equal(draws, one_per_class(labels, 50, seed=7))
    assert not np.array_equal(draws, one_per_class(labels, 50, seed=8))


def test_measure_codes_by_hand():
    # Two draws of three classes in R^2.
    codes = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 1.0]])
    draws = np.array([[0, 1, 2], [0, 3, 2]])
    (width, ) = measure_codes(codes, draws, dict(training=2))
    assert (width['name'], width['dims']) == ('training', 2)
    # Each draw's pairs: 1/sqrt(2), 0, 1/sqrt(2).
    assert width['max_cosine']['draws'] == pytest.approx(
        [1 / math.sqrt(2)] * 2)
    assert width['rms_cosine']['draws'] == pytest.approx(
        [math.sqrt(1 / 3)] * 2)
    assert width['bound'] == pytest.approx(0.5)  # M = 3, d = 2
    # The first column alone: code 2 of the first draw is zero there.
    with pytest.raises(ValueError, match='row 2 of the codes is zero'):
        measure_codes(codes, draws, dict(inference=1))


# ------------------------------------------------------- a trained model

@pytest.fixture(scope='module')
def aux_run(digits_root, tmp_path_factory):
    return train_tiny_run(digits_root,
                          str(tmp_path_factory.mktemp('welch')), 'aux')


@pytest.fixture(scope='module')
def model(aux_run):
    with one_thread_encoder(aux_run) as encoder:
        yield encoder


def database_loader(cfg):
    return build_dataloader(
        cfg, argparse.Namespace(split='database', images=None,
                                batch_size=64, num_workers=0))


def all_branches_by_hand(model, inputs):
    """Every branch's relaxed bits through the head's parts, as the
    paper describes the auxiliary branches: the queries rolled by
    i * d / N, decoded, L2-normalised, projected, tanh."""
    head = model.head
    memory, pos = model.neck(model.backbone(inputs))
    weight = head.query_embed.weight
    step = weight.size(1) // head.num_branches
    out = []
    for i in range(head.num_branches):
        queries = torch.roll(weight, i * step, dims=1)[None].expand(
            len(inputs), -1, -1)
        decoded = head.decoder_layer(torch.zeros_like(queries), queries,
                                     memory, pos)
        unit = F.normalize(head.decoder_norm(decoded), dim=-1)
        out.append(torch.tanh(head.bit_proj(unit)[..., 0]))
    return torch.cat(out, dim=1)


def test_branch_bits_are_the_training_branches(model, aux_run):
    loader = database_loader(aux_run.cfg)
    batch = pseudo_collate([loader.dataset[i] for i in range(5)])
    inputs = model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        codes = branch_bits(model, inputs)
        assert codes.shape == (5, 96)
        torch.testing.assert_close(codes, all_branches_by_hand(model, inputs))
        torch.testing.assert_close(codes[:, :12], relaxed_bits(model, inputs))
    assert not model.head.training  # restored


def test_measured_cosines_against_brute_force(model, aux_run, tmp_path):
    loader = database_loader(aux_run.cfg)
    result = measure_model(model, loader, num_draws=3, seed=5)
    labels = np.asarray(loader.dataset.get_gt_labels())
    assert result['num_classes'] == 10 and result['classes'] == list(range(10))
    assert (result['code_length'], result['relaxed_dims']) == (12, 96)
    indices = np.array(result['indices'])
    assert indices.shape == (3, 10)
    np.testing.assert_array_equal(labels[indices], np.tile(range(10), (3, 1)))
    inference, training = result['widths']
    assert (inference['name'], inference['dims']) == ('inference', 12)
    assert (training['name'], training['dims']) == ('training', 96)
    for n, rows in enumerate(indices):
        batch = pseudo_collate([loader.dataset[int(i)] for i in rows])
        inputs = model.data_preprocessor(batch, False)['inputs']
        with torch.no_grad():
            codes = all_branches_by_hand(model, inputs).double().numpy()
        for width in (inference, training):
            dims = width['dims']
            assert width['max_cosine']['draws'][n] == pytest.approx(
                brute_max_cos(codes[:, :dims]), abs=1e-5)
    for width in (inference, training):
        mu = width['max_cosine']
        assert mu['mean'] == pytest.approx(np.mean(mu['draws']))
        assert (mu['min'], mu['max']) == (min(mu['draws']),
                                          max(mu['draws']))
        # M = 10 classes fit orthogonally in 12 and 96 dimensions.
        assert width['bound'] == 0
        assert all(r <= m + 1e-12 for r, m in zip(
            width['rms_cosine']['draws'], mu['draws']))
    # Same seed, same draws and values.
    again = measure_model(model, loader, num_draws=3, seed=5)
    assert again == result

    out = str(tmp_path / 'welch.png')
    plot_welch([1, 2, 12, 96], bound_curves([10, 200], [1, 2, 12, 96]),
               [dict(label='aux', **result)], out)
    with Image.open(out) as img:
        assert (img.format, img.size) == ('PNG', (640, 480))
