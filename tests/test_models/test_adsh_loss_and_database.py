"""ADSH's database (similarity forms, round state, B's solver), the loss's
extra-term protocol, and the retriever's hand-over of head outputs and the
database's view to the loss."""
import itertools

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample
from torch import nn

from mmqueryopt.models import (ADSHDatabase, ADSHLoss, DatabaseView,
                               soft_negative)
from mmqueryopt.registry import MODELS


def test_soft_negative_hand_counted():
    # a0 matches b0, b1; a1 matches b2: P = 3 of 8 pairs, N = 5.
    a, b = torch.tensor([0, 1]), torch.tensor([0, 0, 1, 2])
    assert soft_negative(a, b) == pytest.approx(-3 / 5)
    # The authors' route: S0 in {-1, +1}, r = sum S0 / sum(1 - S0),
    # S = S0 (1 + r) - r, in float64.
    s0 = np.where(a.numpy()[:, None] == b.numpy()[None], 1.0, -1.0)
    r = s0.sum() / (1 - s0).sum()
    soft = s0 * (1 + r) - r
    got = ADSHDatabase(similarity='soft').target_similarity(
        a, b, dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), soft, rtol=0, atol=1e-15)
    # Multi-hot: a shared class counts as similar.
    multi = torch.tensor([[1, 0, 1], [0, 1, 0]])
    assert soft_negative(multi, multi) == pytest.approx(-2 / 2)
    assert soft_negative(torch.tensor([3, 3]), torch.tensor([3])) == 0.0


def test_binary_is_the_default_and_unknown_form_refused():
    database = ADSHDatabase()
    sim = database.target_similarity(torch.tensor([0, 1]),
                                     torch.tensor([1, 1]))
    assert sim.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="similarity must be one of"):
        ADSHDatabase(similarity='cosine')


def soft_database(labels, codes, gamma):
    """An ADSHDatabase over ``labels`` holding ``codes`` as B."""
    database = ADSHDatabase(gamma=gamma, similarity='soft',
                            code_width=codes.size(1))
    database.prepare(labels)
    database.to(codes.dtype).codes.copy_(codes)
    return database


def test_soft_loss_uses_the_round_ratio_not_the_batch():
    torch.manual_seed(0)
    database_labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    database_codes = torch.randn(8, 4).sign()
    sampled = torch.tensor([0, 2, 4, 5, 7])
    relaxed = torch.tanh(torch.randn(2, 4))
    batch = torch.tensor([4, 7])
    database = soft_database(database_labels, database_codes, 3.0)
    database.start_round(5, 10, sampled)
    assert (database.round_index, database.num_rounds) == (5, 10)
    # Round sample labels 0,1,2,2,3 against the database: P = 2+2+3+3+1.
    negative = -11 / (5 * 8 - 11)
    assert database.round_negative == pytest.approx(negative)
    view = database.view(batch, database_labels[batch], torch.float32)
    assert (view.round_index, view.num_rounds, view.gamma) == (5, 10, 3.0)
    got = ADSHLoss()(relaxed, view)
    # Hand formula in float64.
    f, b = relaxed.double().numpy(), database_codes.double().numpy()
    same = (database_labels[batch].numpy()[:, None] ==
            database_labels.numpy()[None])
    s = np.where(same, 1.0, negative)
    n, m, k = 2, 8, 4
    hash_term = ((k * s - f @ b.T)**2).sum() / (n * m) * 12 / k
    quant = ((f - b[batch.numpy()])**2).sum() / (n * m) * 3.0 * 12 / k
    assert got['loss_hash'].item() == pytest.approx(hash_term, rel=1e-6)
    assert got['loss_quant'].item() == pytest.approx(quant, rel=1e-6)
    # Without a round the batch's own ratio is used (documented fallback).
    fresh = soft_database(database_labels, database_codes, 3.0)
    batch_negative = soft_negative(database_labels[batch], database_labels)
    assert batch_negative != pytest.approx(negative)
    s_batch = np.where(same, 1.0, batch_negative)
    expected = ((k * s_batch - f @ b.T)**2).sum() / (n * m) * 12 / k
    fresh_view = fresh.view(batch, database_labels[batch], torch.float32)
    assert ADSHLoss()(relaxed, fresh_view)['loss_hash'].item() == \
        pytest.approx(expected, rel=1e-6)


def adsh_objective(codes, sampled_codes, sampled_indices, labels, gamma,
                   soft=False):
    """J(B) in float64, written from its definition, with the {0, 1} or the
    soft S."""
    same = labels[sampled_indices][:, None] == labels[None, :]
    negative = -same.sum() / (~same).sum() if soft else 0.0
    sim = np.where(same, 1.0, negative)
    num_bits = sampled_codes.shape[1]
    fit = ((sampled_codes @ codes.T - num_bits * sim)**2).sum()
    quant = ((codes[sampled_indices] - sampled_codes)**2).sum()
    return fit + gamma * quant


def column_by_column(start, sampled_codes, sampled_indices, labels, gamma,
                     soft):
    """Brute force, bit after bit: every sign pattern of column b with the
    other columns as the sequential update left them."""
    expected = start.copy()
    for bit in range(start.shape[1]):
        expected[:, bit] = min(
            itertools.product((-1.0, 1.0), repeat=len(start)),
            key=lambda column: adsh_objective(
                np.column_stack([
                    column if b == bit else expected[:, b]
                    for b in range(start.shape[1])
                ]), sampled_codes, sampled_indices, labels, gamma, soft))
    return expected


def test_each_bit_update_is_the_exact_column_minimiser():
    rng = np.random.default_rng(0)
    num_database, num_bits, gamma = 8, 4, 3.0
    labels = rng.integers(0, 3, num_database)
    sampled_indices = np.array([1, 4, 6])
    sampled_codes = np.tanh(rng.normal(size=(3, num_bits)))
    start = rng.normal(size=(num_database, num_bits))
    database = ADSHDatabase(gamma=gamma, code_width=num_bits)
    database.prepare(torch.from_numpy(labels))
    database.to(torch.float64).codes.copy_(torch.from_numpy(start))
    solved = database.solve(torch.from_numpy(sampled_codes),
                            torch.from_numpy(sampled_indices)).numpy()
    expected = column_by_column(start, sampled_codes, sampled_indices, labels,
                                gamma, soft=False)
    np.testing.assert_array_equal(solved, expected)
    assert set(np.unique(solved)) == {-1.0, 1.0}


def test_soft_bit_update_is_the_exact_column_minimiser():
    rng = np.random.default_rng(1)
    num_database, num_bits, gamma = 8, 3, 2.0
    labels = rng.integers(0, 3, num_database)
    sampled_indices = np.array([0, 3, 5, 6])
    sampled_codes = np.tanh(rng.normal(size=(4, num_bits)))
    start = rng.normal(size=(num_database, num_bits))
    database = soft_database(torch.from_numpy(labels),
                             torch.from_numpy(start), gamma)
    solved = database.solve(torch.from_numpy(sampled_codes),
                            torch.from_numpy(sampled_indices)).numpy()
    expected = column_by_column(start, sampled_codes, sampled_indices, labels,
                                gamma, soft=True)
    np.testing.assert_array_equal(solved, expected)
    # The binary form gives another B here: the option is live.
    database.similarity = 'binary'
    binary = database.solve(torch.from_numpy(sampled_codes),
                            torch.from_numpy(sampled_indices)).numpy()
    assert not np.array_equal(binary, solved)


def test_plain_adsh_refuses_outputs_it_would_ignore():
    relaxed = torch.zeros(2, 4)
    view = DatabaseView(similarity=torch.ones(2, 3),
                        database_codes=torch.ones(3, 4),
                        batch_database_codes=torch.ones(2, 4), gamma=200.0)
    args = (relaxed, view)
    assert set(ADSHLoss()(*args, inputs=torch.zeros(2, 3, 8, 8))) == {
        'loss_hash', 'loss_quant'}
    with pytest.raises(TypeError, match=r"\['features'\].*A2NetLoss"):
        ADSHLoss()(*args, features=torch.zeros(2, 5))


class _DictHead(nn.Module):
    """A head with one extra training output, for the protocol test."""
    code_length = 4
    relaxed_dims = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 4, bias=False)

    def forward(self, feats):
        pooled = feats[-1].mean((2, 3))[:, :8]
        codes = torch.tanh(self.proj(pooled))
        if not self.training:
            return codes
        return dict(relaxed_codes=codes, pooled=pooled)


class _RecordingLoss(ADSHLoss):
    needs_inputs = True

    def extra_losses(self, relaxed_codes, view, pooled, inputs):
        self.seen = (relaxed_codes, pooled, inputs, view.round_index)
        return dict(loss_pooled=pooled.pow(2).mean())


def test_retriever_hands_head_outputs_and_inputs_to_the_loss():
    init_default_scope('mmqueryopt')
    model = MODELS.build(
        dict(
            type='HashRetriever',
            backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                          base_channels=8, out_indices=(3, )),
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(type='QueryHashHead', code_length=4, relaxed_dims=4,
                      embed_dims=8, num_heads=2, ffn_dims=16),
            database=dict(type='ADSHDatabase', similarity='soft')))
    model.neck = nn.Identity()
    model.head = _DictHead()
    model.loss_module = _RecordingLoss()
    labels = torch.tensor([0, 1, 1, 2, 0, 2])
    model.database.prepare(labels, torch.Generator().manual_seed(0))
    model.database.start_round(3, 10, torch.tensor([0, 1, 3]))
    # Round sample labels 0, 1, 2 against the database: P = 6, N = 12.
    assert model.database.round_negative == pytest.approx(-0.5)
    images = torch.randn(2, 3, 16, 16)
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(int(labels[i]))
        for i in (1, 4)
    ]
    model.train()
    losses = model(images, samples, mode='loss')
    assert set(losses) == {'loss_hash', 'loss_quant', 'loss_pooled'}
    relaxed, pooled, inputs, round_index = model.loss_module.seen
    assert relaxed.shape == (2, 4) and pooled.shape == (2, 8)
    assert inputs is images and round_index == 3
    # U rows written for the batch only.
    assert model.database.sampled_codes.abs().sum(1).nonzero().flatten(
    ).tolist() == [1, 4]
    model.eval()
    assert model(images, mode='tensor').shape == (2, 4)
    with pytest.raises(AttributeError, match='exposes attention maps'):
        model.attention_maps(images)
