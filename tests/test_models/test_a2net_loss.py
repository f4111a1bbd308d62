"""A2NetLoss against numbers worked by hand (the comments show the
working): both similarity forms of its ADSH database, both formulations,
the phase switch (given or half the run's rounds), the A2-Net++ pixel
terms."""
import pytest
import torch

from mmqueryopt.models import ADSHDatabase
from mmqueryopt.models.losses import A2NetLoss

# n = 2 sampled images, k = 2 bits, m = 3 database images, d = 2.
CODES = torch.tensor([[0.5, -0.5], [0.5, 0.5]], dtype=torch.float64)
DATABASE_CODES = torch.tensor([[1., 1.], [1., -1.], [-1., 1.]],
                              dtype=torch.float64)
DATABASE_LABELS = torch.tensor([0, 1, 1])
BATCH_LABELS = torch.tensor([0, 1])
BATCH_INDICES = torch.tensor([0, 1])
FEATS = torch.tensor([[1., 2.], [3., 4.]], dtype=torch.float64)
RECONSTRUCTED = torch.tensor([[1., 1.], [2., 2.]], dtype=torch.float64)
LOGITS = torch.tensor([[1., -1.], [0.5, 0.5]], dtype=torch.float64)


def view(round_index=None, similarity='soft', num_rounds=0):
    """The database's view of the batch: B = DATABASE_CODES, the round's
    sample = the batch."""
    database = ADSHDatabase(similarity=similarity, code_width=2)
    database.prepare(DATABASE_LABELS)
    database.double().codes.copy_(DATABASE_CODES)
    if round_index is not None:
        database.start_round(round_index, num_rounds, BATCH_INDICES)
    return database.view(BATCH_INDICES, BATCH_LABELS, torch.float64)


def losses(loss, round_index=None, similarity='soft', num_rounds=0,
           **extra):
    outputs = dict(holistic_feats=FEATS, reconstructed_feats=RECONSTRUCTED,
                   code_logits=LOGITS, inputs=torch.zeros(2, 3, 8, 8))
    outputs.update(extra)
    return {
        name: value.item()
        for name, value in loss(
            CODES, view(round_index, similarity, num_rounds), **outputs
        ).items()
    }


def test_code_formulation_by_hand():
    # F B^T = [[0, 1, -1], [1, 0, 0]].
    # Binary S = [[1, 0, 0], [0, 1, 1]]: kS - FB^T = [[2, -1, 1],
    # [-1, 2, 2]], squares 15; hash = 15 / (n m) / k * 12 = 15.
    # quant: F - B[omega] = [[-.5, -1.5], [-.5, 1.5]], squares 5;
    # 5 / 6 * 200 / 2 * 12 = 1000.
    # rec: x_hat - x = [[0, -1], [-1, -2]], mean of squares 6 / 4 = 1.5.
    # decorr: F^T F = 0.5 I; with n' = 2, (F^T F - 2 I) = -1.5 I, mean of
    # squares 4.5 / 4 = 1.125, / n' / k = 0.28125.
    loss = A2NetLoss(switch_round=0)
    assert losses(loss, 0, 'binary') == pytest.approx(
        dict(loss_hash=15.0, loss_quant=1000.0, loss_rec=1.5,
             loss_decorr=0.28125), rel=1e-6)
    # The code's n' is its configured batch size (16): F^T F - 16 I =
    # -15.5 I, 2 * 240.25 / 4 / 16 / 2 = 3.75390625.
    loss = A2NetLoss(decorr_batch_size=16)
    assert losses(loss, 0, 'binary')['loss_decorr'] == pytest.approx(
        3.75390625)


def test_soft_similarity_by_hand():
    # P = 3 similar pairs of the round's sample (labels 0, 1) with the
    # database (0, 1, 1), N = 3: the dissimilar value is -P/N = -1.
    # kS - FB^T = [[2, -3, -1], [-3, 2, 2]], squares 31: hash = 31.
    values = losses(A2NetLoss(), 0)
    assert values['loss_hash'] == pytest.approx(31.0)
    assert values['loss_quant'] == pytest.approx(1000.0)


def test_extra_terms_start_at_the_switch_round():
    loss = A2NetLoss(switch_round=3, rec_weight=2.0, decorr_weight=4.0)
    before = losses(loss, 2)
    after = losses(loss, 3)
    assert before['loss_rec'] == 0 and before['loss_decorr'] == 0
    assert after['loss_rec'] == pytest.approx(2 * 1.5)
    assert after['loss_decorr'] == pytest.approx(4 * 0.28125)
    # ADSH's terms do not change with the phase.
    assert before['loss_hash'] == after['loss_hash'] == pytest.approx(31.0)
    # Before any round (round_index -1): the first phase.
    assert losses(A2NetLoss(switch_round=1))['loss_rec'] == 0
    # The rec term still carries its gradient from the switch round on.
    feats = FEATS.clone().requires_grad_()
    out = loss(CODES, view(3), holistic_feats=feats,
               reconstructed_feats=RECONSTRUCTED, code_logits=LOGITS,
               inputs=torch.zeros(2, 3, 8, 8))
    out['loss_rec'].backward()
    # d/dx of 2 * mean((x_hat - x)^2) = -4 (x_hat - x) / 4.
    torch.testing.assert_close(feats.grad, -(RECONSTRUCTED - FEATS))


def test_paper_formulation_by_hand():
    # The paper's objective over n m = 6: rec = 6 / 6 = 1; lambda-term:
    # Wx - F = [[.5, -.5], [0, 0]], 0.5 / 6; alpha = 1 / (n k) = 1/4:
    # ||F^T F - 2 I||^2 = 4.5, 4.5 / 4 / 6 = 0.1875. Hash and quant as ADSH.
    loss = A2NetLoss(formulation='paper')
    assert losses(loss, 0) == pytest.approx(
        dict(loss_hash=31.0, loss_quant=1000.0, loss_rec=1.0,
             loss_consistency=0.5 / 6, loss_decorr=0.1875), rel=1e-6)


def test_pixel_terms_by_phase():
    # Generated images 0.5 everywhere, inputs 0 (resized to the
    # generators' size): MSE 0.25, times 0.01 before and 0.1 from the
    # switch; the second image's weights (0, 0.1) here.
    images = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    loss = A2NetLoss(switch_round=1, pixel_weights=(0.01, 0.1),
                     reconstructed_pixel_weights=(0.0, 0.1))
    extra = dict(generated_images_holistic=images,
                 generated_images_reconstructed=images)
    before, after = losses(loss, 0, **extra), losses(loss, 1, **extra)
    assert before['loss_pixel_holistic'] == pytest.approx(0.0025)
    assert before['loss_pixel_reconstructed'] == 0
    assert after['loss_pixel_holistic'] == pytest.approx(0.025)
    assert after['loss_pixel_reconstructed'] == pytest.approx(0.025)


def test_a2netpp_options_need_the_decoders():
    with pytest.raises(ValueError, match='A2-Net\\+\\+ option'):
        losses(A2NetLoss(pixel_weights=(0.01, 0.1)), 0)
    images = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match='reconstructed_pixel_weights is '
                       'None'):
        losses(A2NetLoss(), 0, generated_images_reconstructed=images)
    with pytest.raises(ValueError, match='before, weight from'):
        A2NetLoss(pixel_weights=(0.1, ))
    with pytest.raises(ValueError, match='formulation'):
        A2NetLoss(formulation='pap')
    with pytest.raises(ValueError, match='switch_round'):
        A2NetLoss(switch_round=-1)


def test_switch_round_defaults_to_half_the_rounds():
    """None: the code's switch at half the run's rounds (60 -> 30, 70 ->
    35), told by the round hook through the database's view."""
    loss = A2NetLoss()
    assert loss.switch_round is None
    for rounds, first in ((60, 30), (70, 35)):
        assert losses(loss, first - 1, num_rounds=rounds)['loss_rec'] == 0
        assert losses(loss, first, num_rounds=rounds)['loss_rec'] == \
            pytest.approx(1.5)
    # A given round wins.
    assert losses(A2NetLoss(switch_round=40), 35,
                  num_rounds=60)['loss_rec'] == 0
