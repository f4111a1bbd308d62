"""HashNet and DPSH: sizes from the facts file, the losses of a batch in
float64 by hand, HashNet's continuation scale where it steps, the head's
outputs, and a loss paired with a database that cannot serve it."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from conftest import REPO, adsh_view
from mmqueryopt.models.databases import DatabaseView
from mmqueryopt.models.databases.code_memory_database import (
    CodeMemoryDatabase, CodeMemoryView)
from mmqueryopt.models.heads.continuation_hash_head import \
    ContinuationHashHead
from mmqueryopt.models.losses.dpsh_loss import DPSHLoss
from mmqueryopt.models.losses.hashnet_loss import HashNetLoss
from mmqueryopt.registry import MODELS

# baselines_facts.md, "Summary": 23,508,032 + 2049 k, all trainable.
FACTS_PARAMS = {12: 23_532_620, 48: 23_606_384}


def build(config):
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, config)).model
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


@pytest.mark.parametrize('method', ['hashnet', 'dpsh'])
@pytest.mark.parametrize('bits', sorted(FACTS_PARAMS))
def test_parameter_counts_match_the_facts(method, bits):
    model = build(f'configs/{method}/{method}_cub_{bits}bit.py')
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == FACTS_PARAMS[bits]


def nll(theta, s):
    """-log of sigmoid(theta)^s (1 - sigmoid(theta))^(1 - s), pair by pair
    in float64 loops."""
    out = torch.empty_like(theta)
    for i in range(theta.size(0)):
        for j in range(theta.size(1)):
            p = 1 / (1 + math.exp(-float(theta[i, j])))
            out[i, j] = -math.log(p) if s[i, j] else -math.log(1 - p)
    return out


def view_of(sim, memory=None):
    return CodeMemoryView(similarity=sim, memory_codes=memory)


def test_hashnet_loss_by_hand():
    generator = torch.Generator().manual_seed(0)
    h = torch.tanh(torch.randn(3, 4, generator=generator,
                               dtype=torch.float64) * 2)
    memory = torch.tanh(torch.randn(5, 4, generator=generator,
                                    dtype=torch.float64) * 2)
    sim = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0]],
                       dtype=torch.float64)
    theta = 0.1 * h @ memory.T
    ell = nll(theta, sim)
    # Weighted as the references: S/S1 for the 4 similar, S/S0 for the 11
    # dissimilar pairs, the sum over S = 15.
    weights = torch.where(sim > 0, sim.new_tensor(15 / 4),
                          sim.new_tensor(15 / 11))
    expected = (ell * weights).sum() / 15
    loss = HashNetLoss(alpha=0.1)(h, view_of(sim, memory))
    assert set(loss) == {'loss_likelihood'}
    torch.testing.assert_close(loss['loss_likelihood'], expected, rtol=0,
                               atol=1e-12)
    # Without a similar pair the loss is the dissimilar pairs' mean.
    none = torch.zeros_like(sim)
    torch.testing.assert_close(
        HashNetLoss()(h, view_of(none, memory))['loss_likelihood'],
        nll(theta, none).mean(), rtol=0, atol=1e-12)


def test_hashnet_loss_in_batch_has_gradient_on_both_sides():
    u = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-0.7, 0.4]],
                     dtype=torch.float64, requires_grad=True)
    sim = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float64)
    loss = HashNetLoss(alpha=0.5)(u, view_of(sim))['loss_likelihood']
    ell = nll(0.5 * u.detach() @ u.detach().T, sim)
    expected = ell[sim > 0].mean() + ell[sim == 0].mean()
    torch.testing.assert_close(loss.detach(), expected, rtol=0, atol=1e-12)
    # d/du of the same expression written out, both factors differentiated.
    grad, = torch.autograd.grad(loss, u)
    theta = 0.5 * u.detach() @ u.detach().T
    weights = torch.where(sim > 0, sim.new_tensor(1 / 5),
                          sim.new_tensor(1 / 4))
    coef = (torch.sigmoid(theta) - sim) * weights * 0.5
    torch.testing.assert_close(grad, coef @ u.detach() + coef.T @ u.detach(),
                               rtol=0, atol=1e-12)


def test_dpsh_loss_by_hand():
    generator = torch.Generator().manual_seed(1)
    u = torch.randn(2, 3, generator=generator, dtype=torch.float64) * 3
    u[0, 1] = 0.0
    memory = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    sim = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.float64)
    loss = DPSHLoss(alpha=0.1)(u, view_of(sim, memory))
    theta = 0.5 * u @ memory.T
    torch.testing.assert_close(loss['loss_likelihood'],
                               nll(theta, sim).mean(), rtol=0, atol=1e-12)
    # Quantisation against the signs, a zero output costing nothing.
    quant = sum((float(x) - (0.0 if x == 0 else math.copysign(1, x)))**2
                for x in u.flatten()) / 6 * 0.1
    torch.testing.assert_close(loss['loss_quant'].item(), quant, rtol=0,
                               atol=1e-12)


def test_likelihood_does_not_overflow():
    big = torch.tensor([[300.0]], dtype=torch.float64)
    sim = torch.tensor([[0.0]], dtype=torch.float64)
    loss = DPSHLoss(alpha=0.0)(big, view_of(sim, big))
    # log(1 + e^45000) - 0 = 45000 exactly in float64.
    assert loss['loss_likelihood'].item() == 45000.0


@pytest.mark.parametrize('step,passes,switches', [
    # DSH_Analysis: sqrt(2 * it + epoch // 15 + 1) over 30-pass rounds.
    (15, 30, [((0, 0), 1), ((0, 14), 1), ((0, 15), 2), ((0, 29), 2),
              ((1, 0), 3), ((35, 15), 72), ((39, 29), 80)]),
    # DeepHash-pytorch: sqrt(epoch // 20 + 1), one epoch a round.
    (20, 1, [((0, 0), 1), ((19, 0), 1), ((20, 0), 2), ((39, 0), 2),
             ((40, 0), 3), ((149, 0), 8)]),
    # DSH_Analysis' 50-iteration rule sqrt(it + 1).
    (30, 30, [((0, 29), 1), ((1, 0), 2), ((49, 29), 50)]),
])
def test_continuation_scale_where_it_steps(step, passes, switches):
    head = ContinuationHashHead(4, in_channels=2, step_passes=step)
    for (round_index, pass_index), squared in switches:
        batch = DatabaseView(round_index=round_index, pass_index=pass_index,
                             num_passes=passes)
        assert head.scale(batch) == math.sqrt(squared)


def test_continuation_head_outputs():
    head = ContinuationHashHead(3, in_channels=2)
    feats = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    u = feats @ head.fc.weight.T + head.fc.bias
    # Outside a training batch: u itself (the reference model's output).
    torch.testing.assert_close(head(feats), u)
    batch = DatabaseView(round_index=1, pass_index=20, num_passes=30)
    torch.testing.assert_close(head(feats, batch=batch),
                               torch.tanh(math.sqrt(4) * u))
    with pytest.raises(ValueError, match='model.head.step_passes'):
        ContinuationHashHead(3, step_passes=0)


def test_retriever_records_the_scaled_codes_before_the_loss():
    """One training batch of the HashNet model: the memory holds
    tanh(scale * u) of the batch at its positions in the round's sample,
    and the loss is HashNetLoss of those against the memory."""
    model = build('configs/hashnet/hashnet_digits_12bit.py').eval()
    model.head.train()  # the memory's codes are the head's training output
    database = model.database
    database.prepare(torch.arange(6) % 3)
    database.start_round(2, 10, torch.tensor([4, 0, 5, 1]))
    database.start_pass(1, 3)
    images = torch.randn(2, 3, 16, 16,
                         generator=torch.Generator().manual_seed(0))
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 3)
               for i in (5, 1)]
    losses = model.loss(images, samples)
    with torch.no_grad():
        u = model.head.fc(model.neck(model.backbone(images))[-1])
    h = torch.tanh(math.sqrt((2 * 3 + 1) // 3 + 1) * u)
    # Positions 2 and 3 of the round's sample.
    torch.testing.assert_close(database.codes[2:], h)
    assert database.codes[:2].abs().sum() == 0
    assert database.labels.tolist() == [-1, -1, 2, 1]
    view = database.view(torch.tensor([5, 1]), torch.tensor([2, 1]),
                         torch.float32)
    torch.testing.assert_close(
        losses['loss_likelihood'],
        HashNetLoss(alpha=model.loss_module.alpha)(h, view)['loss_likelihood'])


@pytest.mark.parametrize('loss', [HashNetLoss(), DPSHLoss()])
def test_a_database_without_a_code_memory_is_refused(loss):
    name = type(loss).__name__
    learned = adsh_view(torch.tensor([0]), torch.tensor([0]),
                        torch.ones(2, 3), torch.tensor([0, 1]))
    for view in (learned, DatabaseView()):
        with pytest.raises(TypeError,
                           match=rf'model.loss {name} .*model.database='
                           r"dict\(type='CodeMemoryDatabase'"):
            loss(torch.zeros(1, 3), view)
    with pytest.raises(TypeError, match='training outputs'):
        loss(torch.zeros(1, 3), view_of(torch.zeros(1, 1)),
             feats=torch.zeros(1))


def test_adsh_loss_refuses_a_code_memory():
    from mmqueryopt.models import ADSHLoss
    database = CodeMemoryDatabase(rows='dataset', code_width=3)
    database.prepare(torch.tensor([0, 1]))
    database.record(torch.tensor([0]), torch.zeros(1, 3))
    view = database.view(torch.tensor([0]), torch.tensor([0]), torch.float32)
    with pytest.raises(TypeError, match="dict\\(type='ADSHDatabase'\\)"):
        ADSHLoss()(torch.zeros(1, 3), view)
