"""LSH, ITQ and SDH against independent computations: properties of the
random projections, scipy's Procrustes solver and an SVD for ITQ's steps,
hand-worked closed forms and brute force for SDH's, and the pooling rules
of the neck outputs."""
import itertools

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

from mmqueryopt.analysis.shallow import (ITQ, LSH, SDH, SHALLOW_METHODS,
                                         describe_feature, pooled_feature)
from mmqueryopt.analysis.shallow.itq import (principal_directions,
                                             procrustes_rotation,
                                             quantization_loss)
from mmqueryopt.analysis.shallow.sdh import (classifier_step, dcc_step,
                                             label_matrix, projection_step,
                                             rbf_features, sdh_objective)
from mmqueryopt.evaluation.functional import evaluate_retrieval
from mmqueryopt.models.necks.subtle_feature_neck import LevelTokens


@pytest.fixture(scope='module')
def digits():
    """scikit-learn's digits as 64-d pixel features, split as
    tools/export_digits.py splits them (image i is a query when i % 5 == 0):
    ``(database, database labels, queries, query labels)``."""
    from sklearn.datasets import load_digits
    data = load_digits()
    query = np.arange(len(data.target)) % 5 == 0
    return (data.data[~query], data.target[~query], data.data[query],
            data.target[query])


def retrieval_map(method, digits) -> float:
    database, database_labels, queries, query_labels = digits
    method.fit(database, database_labels)
    return evaluate_retrieval(method.encode(queries), method.encode(database),
                              query_labels, database_labels)['mAP']


# --- the feature of a neck's output ---------------------------------------


def test_pooling_rules_by_output_type():
    gen = torch.Generator().manual_seed(0)
    vector = torch.randn(2, 5, generator=gen)
    tokens = torch.randn(2, 7, 3, generator=gen)
    maps = torch.randn(2, 3, 4, 5, generator=gen)
    descriptors = torch.randn(2, 4, 3, 2, 2, generator=gen)
    torch.testing.assert_close(pooled_feature(vector), vector)
    # Written out element by element: the mean over tokens / positions.
    expected_tokens = torch.stack([
        torch.stack([sum(tokens[b, n, c] for n in range(7)) / 7
                     for c in range(3)]) for b in range(2)
    ])
    torch.testing.assert_close(pooled_feature(tokens), expected_tokens)
    expected_maps = torch.tensor(
        [[float(maps[b, c].sum()) / 20 for c in range(3)] for b in range(2)])
    torch.testing.assert_close(pooled_feature(maps), expected_maps)
    expected_descriptors = torch.tensor(
        [[float(descriptors[b, d, c].sum()) / 4 for d in range(4)
          for c in range(3)] for b in range(2)])
    torch.testing.assert_close(pooled_feature(descriptors),
                               expected_descriptors)
    assert describe_feature(maps) == ('(B, C, H, W) map: global average '
                                      'pooling')


def test_pooling_picks_the_features_of_tuples_and_dicts():
    tokens, pos = torch.rand(2, 6, 4), torch.rand(2, 6, 4)
    # QueryOpt's (tokens, position embedding): the tokens, mean-pooled.
    level = LevelTokens(tokens, pos, ((2, 2), (1, 2)))
    torch.testing.assert_close(pooled_feature(level), tokens.mean(1))
    # A2-Net++'s (descriptors, None) in eval mode: the descriptors.
    maps = torch.rand(2, 3, 4, 2, 2)
    torch.testing.assert_close(pooled_feature((maps, None)),
                               maps.mean((3, 4)).flatten(1))
    # MMPretrain's GlobalAveragePooling of two maps: the last, as a head.
    first, last = torch.rand(2, 3), torch.rand(2, 5)
    torch.testing.assert_close(pooled_feature((first, last)), last)
    # ExchNet's dict: its 'feats'.
    feats = torch.rand(2, 9)
    torch.testing.assert_close(
        pooled_feature(dict(feats=feats, part_feats=torch.rand(2, 4, 2))),
        feats)
    assert describe_feature(level).startswith('first of a tuple, (B, N, C)')


@pytest.mark.parametrize('output,words', [
    (dict(codes=torch.rand(2, 3)), "without 'feats' (keys ['codes'])"),
    (torch.rand(1, 2, 3, 4, 5, 6), '6-dimensional'),
    (('a', 'b'), "['str', 'str']"),
])
def test_pooling_refuses_what_it_cannot_read(output, words):
    with pytest.raises(ValueError, match='no ') as info:
        pooled_feature(output)
    assert words in str(info.value)


# --- LSH ------------------------------------------------------------------


def test_lsh_bits_differ_with_probability_angle_over_pi():
    rng = np.random.default_rng(1)
    dim = 2000
    a, b = rng.standard_normal((2, dim))
    b = a + 1.5 * b  # some angle well inside (0, pi / 2)
    # Symmetric training set: mean exactly 0, so a and b are used as they are.
    lsh = LSH(dim, seed=3).fit(np.stack([a, b, -a, -b]))
    codes = lsh.encode(np.stack([a, b]))
    angle = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    differ = np.mean(codes[0] != codes[1])
    # Binomial(2000, p) fraction: standard deviation <= 0.0112.
    assert abs(differ - angle / np.pi) < 0.04, (differ, angle / np.pi)


def test_lsh_centres_on_the_training_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    train, test = rng.standard_normal((50, 8)), rng.standard_normal((9, 8))
    shift = 100.0 * rng.standard_normal(8)
    codes = LSH(6, seed=4).fit(train).encode(test)
    assert codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}
    np.testing.assert_array_equal(
        LSH(6, seed=4).fit(train + shift).encode(test + shift), codes)
    assert not np.array_equal(LSH(6, seed=5).fit(train).encode(test), codes)


def test_more_bits_than_dimensions_is_refused():
    features = np.zeros((20, 4))
    for method in (LSH(5), ITQ(5)):
        with pytest.raises(ValueError, match='at most 4 bits .* asked for 5'):
            method.fit(features)
    # ITQ's PCA is also limited by the number of items.
    with pytest.raises(ValueError, match='at most 3 bits from 3 features'):
        ITQ(4).fit(np.random.default_rng(0).standard_normal((3, 8)))


# --- ITQ ------------------------------------------------------------------


def test_itq_pca_is_the_svd_of_the_centred_data(digits):
    database = digits[0]
    centred = database - database.mean(0)
    directions = principal_directions(centred, 12)
    right = np.linalg.svd(centred, full_matrices=False)[2][:12].T
    # The same directions in the same order, each up to its sign.
    np.testing.assert_allclose(np.abs(directions.T @ right), np.eye(12),
                               atol=1e-8)


def test_itq_rotation_step_is_scipys_procrustes():
    rng = np.random.default_rng(2)
    projected = rng.standard_normal((40, 6))
    codes = np.where(rng.standard_normal((40, 6)) >= 0, 1.0, -1.0)
    rotation = procrustes_rotation(projected, codes)
    np.testing.assert_allclose(rotation,
                               orthogonal_procrustes(projected, codes)[0],
                               atol=1e-12)
    # No orthogonal matrix fits better.
    best = quantization_loss(codes, projected, rotation)
    for _ in range(50):
        other = np.linalg.qr(rng.standard_normal((6, 6)))[0]
        assert best <= quantization_loss(codes, projected, other) + 1e-9


def test_itq_objective_never_increases_and_r_stays_orthogonal(digits):
    database = digits[0]
    itq = ITQ(12, iterations=50, seed=0).fit(database)
    objective = np.asarray(itq.objective)
    assert len(objective) == 51
    assert np.all(np.diff(objective) <= 1e-9 * objective[0])
    assert objective[-1] < objective[0]
    np.testing.assert_allclose(itq.rotation.T @ itq.rotation, np.eye(12),
                               atol=1e-10)
    # The last value is the loss of the final rotation and the database's
    # codes, recomputed from the pieces.
    projected = (database - database.mean(0)) @ itq.pca
    codes = itq.encode(database).astype(np.float64)
    assert objective[-1] == pytest.approx(
        np.sum((codes - projected @ itq.rotation)**2), rel=1e-12)


def test_itq_beats_lsh_at_12_bits_on_digits(digits):
    # Over several seeds each: not one lucky draw.
    itq = [retrieval_map(ITQ(12, seed=seed), digits) for seed in range(3)]
    lsh = [retrieval_map(LSH(12, seed=seed), digits) for seed in range(3)]
    assert min(itq) > max(lsh), (itq, lsh)


# --- SDH ------------------------------------------------------------------


def test_sdh_w_and_p_steps_match_hand_worked_closed_forms():
    codes = np.array([[1., 1.], [1., -1.], [-1., 1.]])
    targets = label_matrix(np.array([0, 1, 1]), 3)
    np.testing.assert_array_equal(targets, [[1, 0], [0, 1], [0, 1]])
    # B^T B + I = [[4, -1], [-1, 4]], inverse [[4, 1], [1, 4]] / 15;
    # B^T Y = [[1, 0], [1, 0]]; W = [[5, 0], [5, 0]] / 15.
    np.testing.assert_allclose(classifier_step(codes, targets, 1.0),
                               [[1 / 3, 0], [1 / 3, 0]], atol=1e-15)
    phi = np.array([[1., 0.], [0., 1.], [1., 1.]])
    column = np.array([[1.], [-1.], [1.]])
    # Phi^T Phi + I = [[3, 1], [1, 3]], inverse [[3, -1], [-1, 3]] / 8;
    # Phi^T B = [2, 0]; P = [6, -2] / 8.
    np.testing.assert_allclose(projection_step(phi, column, 1.0),
                               [[0.75], [-0.25]], atol=1e-15)


def test_sdh_w_and_p_steps_are_the_minimisers():
    rng = np.random.default_rng(4)
    codes = np.where(rng.standard_normal((30, 5)) >= 0, 1.0, -1.0)
    targets = label_matrix(rng.integers(0, 4, 30), 30)
    phi = rng.random((30, 8))
    lam, nu, rho = 0.7, 0.3, 0.05
    classifier = classifier_step(codes, targets, lam)
    projection = projection_step(phi, codes, rho)
    best = sdh_objective(codes, classifier, projection, targets, phi, lam, nu,
                         rho)
    # The objective is a convex quadratic in W and in P: any step away
    # from the closed form raises it.
    for _ in range(20):
        for w, p in ((classifier + 1e-3 * rng.standard_normal(
                classifier.shape), projection),
                     (classifier, projection +
                      1e-3 * rng.standard_normal(projection.shape))):
            assert sdh_objective(codes, w, p, targets, phi, lam, nu,
                                 rho) > best


def test_dcc_leaves_no_bit_column_improvable_by_brute_force():
    rng = np.random.default_rng(5)
    num, bits = 5, 3
    classifier = rng.standard_normal((bits, 2))
    q = rng.standard_normal((num, bits))
    start = np.where(rng.standard_normal((num, bits)) >= 0, 1.0, -1.0)

    def loss(codes):  # the B-step's objective ||B W||^2 - 2 tr(B^T Q)
        return np.sum((codes @ classifier)**2) - 2 * np.sum(codes * q)

    codes = dcc_step(q, classifier, start, sweeps=100)
    assert loss(codes) <= loss(start) + 1e-12
    for bit in range(bits):
        for column in itertools.product((-1.0, 1.0), repeat=num):
            other = codes.copy()
            other[:, bit] = column
            assert loss(codes) <= loss(other) + 1e-12


def test_sdh_objective_decreases_every_outer_iteration(digits):
    database, labels = digits[0], digits[1]
    sdh = SDH(12, anchors=300, iterations=5, seed=0).fit(database, labels)
    objective = np.asarray(sdh.objective)
    assert len(objective) == 6
    assert np.all(np.diff(objective) <= 1e-9 * objective[0])
    assert objective[1] < objective[0]
    # Recomputed from the learned pieces, distances by differences (not
    # the ||x||^2 + ||a||^2 - 2 x.a of the module), phi per anchor.
    squared = ((database[:, None, :] - sdh.anchors[None])**2).sum(-1)
    sigma = np.sqrt(squared.mean())
    assert sdh.sigma == pytest.approx(sigma, rel=1e-10)
    phi = np.array([[np.exp(-d / (2 * sigma**2)) for d in row] + [1.0]
                    for row in squared[:50]])
    np.testing.assert_allclose(rbf_features(database[:50], sdh.anchors,
                                            sdh.sigma), phi, atol=1e-12)
    np.testing.assert_array_equal(
        sdh.encode(database[:50]),
        np.where(phi @ sdh.projection >= 0, 1, -1))
    targets = np.eye(10)[labels]
    full_phi = rbf_features(database, sdh.anchors, sdh.sigma)
    assert objective[-1] == pytest.approx(
        np.sum((targets - sdh.codes @ sdh.classifier)**2) +
        np.sum(sdh.classifier**2) + 1e-5 *
        (np.sum((sdh.codes - full_phi @ sdh.projection)**2) +
         1e-2 * np.sum(sdh.projection**2)), rel=1e-10)


def test_sdh_refuses_missing_labels_and_too_many_anchors():
    features = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match='SDH needs labels'):
        SDH(4, anchors=5).fit(features)
    with pytest.raises(ValueError, match='draws 20 anchors .* there are 10'):
        SDH(4, anchors=20).fit(features, np.arange(10) % 2)


def test_every_method_is_named_and_encodes_unseen_features(digits):
    database, labels, queries, _ = digits
    assert set(SHALLOW_METHODS) == {'lsh', 'itq', 'sdh'}
    for name, cls in SHALLOW_METHODS.items():
        options = dict(anchors=100) if name == 'sdh' else {}
        method = cls(8, **options).fit(database, labels)
        codes = method.encode(queries)
        assert codes.shape == (len(queries), 8) and codes.dtype == np.int8
