"""CSQ's hash centres (the reference's construction) and its loss against
a float64 hand computation; the database it needs."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, adsh_view
from mmqueryopt.models import DatabaseView
from mmqueryopt.models.losses.csq_loss import CSQLoss, hadamard, hash_centers
from mmqueryopt.registry import MODELS


def pairwise_distances(centers):
    return [int((a != b).sum()) for i, a in enumerate(centers)
            for b in centers[i + 1:]]


def test_hadamard_rows_are_orthogonal():
    for order in (1, 2, 16, 64):
        matrix = hadamard(order)
        assert matrix.shape == (order, order)
        assert torch.equal(matrix @ matrix.T, order * torch.eye(order))
    assert torch.equal(hadamard(2), torch.tensor([[1., 1.], [1., -1.]]))


@pytest.mark.parametrize('code_length', [16, 32])
def test_power_of_two_lengths_take_hadamard_rows_first(code_length):
    centers = hash_centers(10, code_length)
    full = hadamard(code_length)
    assert torch.equal(centers, torch.cat([full, -full])[:10])
    # Classes beyond 2k: random balanced codes after the 2k rows.
    many = hash_centers(2 * code_length + 5, code_length, seed=3)
    assert torch.equal(many[:2 * code_length], torch.cat([full, -full]))
    assert (many[2 * code_length:].sum(1) == 0).all()


@pytest.mark.parametrize('code_length, num_classes', [(12, 4), (24, 8),
                                                      (48, 30)])
def test_other_lengths_draw_balanced_codes_until_far_apart(
        code_length, num_classes):
    centers = hash_centers(num_classes, code_length, seed=1)
    assert centers.shape == (num_classes, code_length)
    assert set(centers.unique().tolist()) == {-1.0, 1.0}
    # Balanced: k/2 bits -1 in every centre.
    assert (centers.sum(1) == 0).all()
    # Few enough classes to meet the reference's criterion.
    distances = pairwise_distances(centers)
    assert min(distances) > code_length / 4
    assert sum(distances) / len(distances) >= code_length / 2
    assert torch.equal(centers, hash_centers(num_classes, code_length,
                                             seed=1))
    assert not torch.equal(centers,
                           hash_centers(num_classes, code_length, seed=2))


def test_crowded_classes_keep_the_last_draw():
    # 200 classes of 12 bits cannot all be 3 bits apart: the reference
    # keeps its 20th draw; it is still balanced.
    centers = hash_centers(200, 12)
    assert (centers.sum(1) == 0).all()
    assert min(pairwise_distances(centers)) <= 3


def test_loss_is_bce_to_the_centre_plus_quantisation_in_float64():
    loss = CSQLoss(num_classes=4, code_length=6, lambd=0.1).double()
    generator = torch.Generator().manual_seed(0)
    codes = torch.rand(3, 6, generator=generator, dtype=torch.float64) * \
        1.8 - 0.9
    labels = torch.tensor([2, 0, 2])
    out = loss(codes, DatabaseView(labels=labels))
    centers = loss.centers
    expected_bce = 0.0
    for i, label in enumerate(labels.tolist()):
        for b in range(6):
            p = (codes[i, b].item() + 1) / 2
            t = (centers[label, b].item() + 1) / 2
            expected_bce -= t * math.log(p) + (1 - t) * math.log(1 - p)
    expected_bce /= 18
    expected_quant = 0.1 * sum(
        (abs(codes[i, b].item()) - 1)**2 for i in range(3)
        for b in range(6)) / 18
    assert out['loss_center'].item() == pytest.approx(expected_bce, rel=1e-12)
    assert out['loss_quant'].item() == pytest.approx(expected_quant,
                                                     rel=1e-12)


def test_saturated_codes_cost_torch_clamp():
    # A tanh saturated at the wrong sign: log(0) is clamped at -100.
    loss = CSQLoss(num_classes=2, code_length=4)
    target = loss.centers[0]
    out = loss(-target[None], DatabaseView(labels=torch.tensor([0])))
    assert out['loss_center'].item() == pytest.approx(100.0)


def test_multi_hot_labels_take_the_sign_of_the_summed_centres():
    loss = CSQLoss(num_classes=3, code_length=16)
    labels = torch.tensor([[1, 1, 0], [0, 0, 1]])
    targets = loss.target_codes(labels)
    summed = loss.centers[0] + loss.centers[1]
    expected = torch.where(summed == 0, loss.tie_bits, summed.sign())
    assert torch.equal(targets[0], expected)
    assert torch.equal(targets[1], loss.centers[2])


def test_learned_database_and_unknown_classes_are_refused():
    loss = CSQLoss(num_classes=3, code_length=4)
    view = adsh_view(torch.tensor([0]), torch.tensor([0]),
                     torch.ones(2, 4), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match='EncodedDatabase'):
        loss(torch.zeros(1, 4), view)
    with pytest.raises(ValueError, match='model.loss.num_classes=3'):
        loss(torch.zeros(1, 4), DatabaseView(labels=torch.tensor([5])))


def test_centres_travel_in_checkpoints():
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/csq/csq_digits_12bit.py'))
    model = MODELS.build(cfg.model)
    assert model.loss_module.centers.shape == (10, 12)
    assert 'loss_module.centers' in model.state_dict()
