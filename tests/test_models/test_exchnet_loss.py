"""ExchNetLoss against numbers worked by hand in float64 (the comments show
the working): ADSH's hash term over ClassAnchorDatabase with gamma 0 (no
quantisation term), the Hellinger spatial and channel diversity terms, the
unsquared alignment term and when it counts."""
import math

import pytest
import torch

from mmqueryopt.models import EncodedDatabase
from mmqueryopt.models.databases.class_anchor_database import \
    ClassAnchorDatabase
from mmqueryopt.models.losses.exchnet_loss import (ExchNetLoss,
                                                   mean_pairwise_hellinger)

f64 = dict(dtype=torch.float64)
# n = 2 images, k = 2 bits, m = 3 database images.
CODES = torch.tensor([[0.5, -0.5], [0.5, 0.5]], **f64)
DATABASE_CODES = torch.tensor([[1., 1.], [1., -1.], [-1., 1.]], **f64)
DATABASE_LABELS = torch.tensor([0, 1, 1])
BATCH_LABELS = torch.tensor([0, 1])
BATCH_INDICES = torch.tensor([0, 1])
# M = 3 parts over N = 2 outcomes. Image 0: p1 = (1, 0), p2 = (0, 1),
# p3 = (1/4, 3/4); image 1: three equal distributions.
DISTS = torch.tensor([[[1., 0.], [0., 1.], [.25, .75]],
                      [[.5, .5], [.5, .5], [.5, .5]]], **f64)
# Image 0 by hand: H(p1, p2) = ||(1, -1)|| / sqrt(2) = 1;
# H(p1, p3) = ||(1 - 1/2, -sqrt(3)/2)|| / sqrt(2) = 1 / sqrt(2);
# H(p2, p3) = ||(-1/2, 1 - sqrt(3)/2)|| / sqrt(2)
#           = sqrt(1/4 + (1 - sqrt(3)/2)^2) / sqrt(2).
H23 = math.sqrt(0.25 + (1 - math.sqrt(3) / 2)**2) / math.sqrt(2)
MEAN_HELLINGER_0 = (1 + 1 / math.sqrt(2) + H23) / 3  # 0.69104...


def view(similarity='binary', gamma=0.0):
    database = ClassAnchorDatabase(gamma=gamma, similarity=similarity,
                                   code_width=2)
    database.prepare(DATABASE_LABELS)
    database.double().codes.copy_(DATABASE_CODES)
    database.start_round(0, 40, BATCH_INDICES)
    return database.view(BATCH_INDICES, BATCH_LABELS, torch.float64)


def outputs(**extra):
    parts = torch.zeros(2, 3, 2, **f64)
    result = dict(part_feats=parts, spatial_dists=DISTS,
                  channel_dists=DISTS)
    result.update(extra)
    return result


def test_mean_pairwise_hellinger_by_hand():
    values = mean_pairwise_hellinger(DISTS)
    assert values[0].item() == pytest.approx(MEAN_HELLINGER_0, rel=1e-12)
    assert values[1].item() == 0
    assert MEAN_HELLINGER_0 == pytest.approx(0.6910441, abs=1e-7)


def test_hash_term_and_no_quantisation_with_gamma_zero():
    # F B^T = [[0, 1, -1], [1, 0, 0]]. Binary S = [[1, 0, 0], [0, 1, 1]]:
    # kS - FB^T = [[2, -1, 1], [-1, 2, 2]], squares 15; hash = 15 / (n m)
    # / k * 12 = 15. gamma = 0: quant = 0 whatever F - B[omega].
    losses = ExchNetLoss()(CODES, view(), **outputs())
    assert losses['loss_hash'].item() == pytest.approx(15.0)
    assert losses['loss_quant'].item() == 0
    # Soft S (the reference's): P = N = 3 pairs, dissimilar -1:
    # kS - FB^T = [[2, -3, -1], [-3, 2, 2]], squares 31.
    soft = ExchNetLoss()(CODES, view('soft'), **outputs())
    assert soft['loss_hash'].item() == pytest.approx(31.0)
    # The reference's --quan-loss variant: gamma 200 adds ADSH's term,
    # F - B[omega] = [[-.5, -1.5], [-.5, 1.5]], squares 5:
    # 5 / 6 * 200 / 2 * 12 = 1000.
    quant = ExchNetLoss()(CODES, view(gamma=200.0), **outputs())
    assert quant['loss_quant'].item() == pytest.approx(1000.0)


def test_diversity_terms_by_hand():
    # spatial = sum over images of (1 - d) / n = ((1 - d0) + (1 - 0)) / 2;
    # channel = sum of relu(t - d) / n = (0 + 0.4) / 2 with t = 0.4
    # (d0 = 0.69 > t).
    losses = ExchNetLoss()(CODES, view(), **outputs())
    assert losses['loss_spatial'].item() == pytest.approx(
        (1 - MEAN_HELLINGER_0 + 1) / 2, rel=1e-12)
    assert losses['loss_channel'].item() == pytest.approx(0.2, rel=1e-12)
    # Weights scale each term; a margin above d0 counts image 0 too:
    # (0.9 - d0 + 0.9) / 2.
    weighted = ExchNetLoss(spatial_weight=3.0, channel_weight=2.0,
                           channel_margin=0.9)(CODES, view(), **outputs())
    assert weighted['loss_spatial'].item() == pytest.approx(
        3 * (2 - MEAN_HELLINGER_0) / 2, rel=1e-12)
    assert weighted['loss_channel'].item() == pytest.approx(
        2 * (1.8 - MEAN_HELLINGER_0) / 2, rel=1e-12)


def test_alignment_counts_only_with_anchors():
    # Before the exchange round the head hands no anchors: 0.
    losses = ExchNetLoss()(CODES, view(), **outputs())
    assert losses['loss_align'].item() == 0
    # ||P - A||_F over the whole batch, not squared, / n: the differences
    # are 3 and 4 in two entries, 12 in a third: sqrt(9 + 16 + 144) = 13,
    # / 2 = 6.5; weight 2 doubles it.
    parts = torch.zeros(2, 3, 2, **f64)
    anchors = parts.clone()
    anchors[0, 0, 0], anchors[0, 2, 1], anchors[1, 1, 0] = 3., -4., 12.
    aligned = ExchNetLoss(align_weight=2.0)(
        CODES, view(), **outputs(part_feats=parts, anchor_feats=anchors))
    assert aligned['loss_align'].item() == pytest.approx(13.0, rel=1e-12)
    assert aligned['loss_hash'].item() == pytest.approx(15.0)


def test_terms_have_gradients_where_the_reference_has():
    dists = DISTS.clone().clamp_min(1e-3).requires_grad_()
    parts = torch.randn(2, 3, 2, **f64, requires_grad=True)
    losses = ExchNetLoss()(CODES, view(), **outputs(
        spatial_dists=dists, part_feats=parts,
        anchor_feats=torch.zeros(2, 3, 2, **f64)))
    sum(losses.values()).backward()
    assert dists.grad.abs().sum() > 0
    # d||P||/dP = P / ||P|| / n.
    torch.testing.assert_close(parts.grad, parts.detach() /
                               parts.detach().norm() / 2)


def test_refuses_a_database_without_codes_or_missing_outputs():
    database = EncodedDatabase()
    encoded = database.view(BATCH_INDICES, BATCH_LABELS, torch.float64)
    with pytest.raises(TypeError, match="dict\\(type='ADSHDatabase'\\)"):
        ExchNetLoss()(CODES, encoded, **outputs())
    with pytest.raises(TypeError, match="needs the head outputs"):
        ExchNetLoss()(CODES, view(), part_feats=torch.zeros(2, 3, 2))
    with pytest.raises(TypeError, match='ExchNetNeck and ExchNetHashHead'):
        ExchNetLoss()(CODES, view(), holistic_feats=torch.zeros(2, 4),
                      **outputs())
