"""Figure 8's similarities (mmqueryopt.analysis.query_similarity) of a
tiny trained digits model: the queries' against the checkpoint's weights,
the attribute features' against the decoder's output caught by a hook
while the model encodes."""
import argparse
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import one_thread_encoder, train_tiny_run
from encode import build_dataloader
from mmqueryopt.analysis.query_similarity import (
    attribute_features, cosine_matrix, example_images, off_diagonal,
    plot_branch_queries, plot_query_similarity, query_similarities,
    split_attribute_similarities)
from mmqueryopt.fileio import load_checkpoint_file
from mmqueryopt.retrieval.encoder import relaxed_bits


def loop_cosines(vectors):
    vectors = np.asarray(vectors, np.float64)
    n = len(vectors)
    out = np.empty((n, n))
    for i, j in itertools.product(range(n), repeat=2):
        out[i, j] = vectors[i] @ vectors[j] / np.sqrt(
            (vectors[i] @ vectors[i]) * (vectors[j] @ vectors[j]))
    return out


def test_cosine_matrix_and_off_diagonal():
    vectors = np.random.default_rng(0).standard_normal((7, 5))
    matrix = cosine_matrix(vectors)
    np.testing.assert_allclose(matrix, loop_cosines(vectors), rtol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, rtol=1e-14)
    summary = off_diagonal([[1.0, -0.5, 0.2], [-0.5, 1.0, 0.1],
                            [0.2, 0.1, 1.0]])
    assert summary['mean_abs'] == pytest.approx((0.5 + 0.2 + 0.1) / 3)
    assert summary['max_abs'] == 0.5
    assert off_diagonal([[1.0]]) == dict(mean_abs=None, max_abs=None)
    with pytest.raises(ValueError, match='row 1 is zero'):
        cosine_matrix([[1.0, 2.0], [0.0, 0.0]])


def test_example_images_are_each_class_first():
    labels = np.array([2, 0, 2, 1, 0, 5])
    assert example_images(labels, 3) == [1, 3, 0]
    assert example_images(labels, 10) == [1, 3, 0, 5]
    assert example_images(labels, 0) == []


@pytest.fixture(scope='module')
def aux_run(digits_root, tmp_path_factory):
    return train_tiny_run(digits_root,
                          str(tmp_path_factory.mktemp('queries')), 'aux')


@pytest.fixture(scope='module')
def model(aux_run):
    with one_thread_encoder(aux_run) as encoder:
        yield encoder


def test_query_similarity_from_the_checkpoint(model, aux_run):
    state = load_checkpoint_file(aux_run.ckpt)['state_dict']
    weight = state['head.query_embed.weight'].double().numpy()
    assert weight.shape == (12, 32)
    result = query_similarities(model.head)
    queries = np.array(result['queries']['matrix'])
    np.testing.assert_allclose(queries, loop_cosines(weight), atol=1e-12)
    off = np.abs(loop_cosines(weight)[~np.eye(12, dtype=bool)])
    assert result['queries']['max_abs'] == pytest.approx(off.max())
    assert result['queries']['mean_abs'] == pytest.approx(off.mean())
    # Eight branches, each rolled by 32 / 8 = 4 features more.
    rolled = np.concatenate([np.roll(weight, 4 * i, axis=1)
                             for i in range(8)])
    branches = np.array(result['branch_queries']['matrix'])
    assert branches.shape == (96, 96)
    np.testing.assert_allclose(branches, loop_cosines(rolled), atol=1e-12)
    # A shared roll keeps the cosines: each within-branch block is branch
    # 0's; across branches they differ.
    for i in range(8):
        block = branches[12 * i:12 * (i + 1), 12 * i:12 * (i + 1)]
        np.testing.assert_allclose(block, queries, atol=1e-12)
    assert not np.allclose(branches[:12, 12:24], queries, atol=1e-3)


def test_attribute_features_give_the_bits(model, aux_run):
    loader = build_dataloader(aux_run.cfg, argparse.Namespace(
        split='query', images=None, batch_size=8, num_workers=0))
    batch = next(iter(loader))
    inputs = model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        features = attribute_features(model, inputs)
        assert features.shape == (8, 12, 32)
        # Normalised and projected by the head, they are the relaxed bits.
        bits = torch.tanh(model.head.bit_proj(
            torch.nn.functional.normalize(features, dim=-1))[..., 0])
        torch.testing.assert_close(bits, relaxed_bits(model, inputs))


def test_attribute_similarity_over_the_split(model, aux_run):
    loader = build_dataloader(aux_run.cfg, argparse.Namespace(
        split='query', images=None, batch_size=50, num_workers=0))
    result = split_attribute_similarities(model, loader, num_examples=3)
    # The decoder's final LayerNorm output, caught while the model encodes.
    caught = []
    handle = model.head.decoder_norm.register_forward_hook(
        lambda module, args, output: caught.append(output.double()))
    labels = []
    try:
        with torch.no_grad():
            for batch in loader:
                inputs = model.data_preprocessor(batch, False)['inputs']
                model.extract_feat(inputs)
                labels += [int(s.gt_label) for s in batch['data_samples']]
    finally:
        handle.remove()
    features = torch.cat(caught).numpy()
    assert features.shape == (360, 12, 32)
    per_image = np.stack([loop_cosines(f) for f in features])
    assert result['num_images'] == 360
    np.testing.assert_allclose(result['mean']['matrix'],
                               per_image.mean(axis=0), atol=1e-6)
    mean = per_image.mean(axis=0)
    assert result['mean']['max_abs'] == pytest.approx(
        np.abs(mean[~np.eye(12, dtype=bool)]).max(), abs=1e-6)
    labels = np.array(labels)
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in range(3)]
    assert [e['index'] for e in result['examples']] == firsts
    for example in result['examples']:
        assert example['label'] == labels[example['index']]
        assert example['path'] == loader.dataset.get_data_info(
            example['index'])['img_path']
        np.testing.assert_allclose(example['matrix'],
                                   per_image[example['index']], atol=1e-6)

    out = aux_run.config[:-3] + '_figure8.png'
    plot_query_similarity(
        dict(**query_similarities(model.head), attributes=result),
        out, loader.dataset.metainfo['classes'])
    with Image.open(out) as img:
        # Five panels of 300 x 340 pixels and 80 for the colour bar.
        assert (img.format, img.size) == ('PNG', (1580, 340))
    out = aux_run.config[:-3] + '_branches.png'
    plot_branch_queries(
        query_similarities(model.head)['branch_queries']['matrix'], 12, out)
    with Image.open(out) as img:
        assert (img.format, img.size) == ('PNG', (640, 560))
