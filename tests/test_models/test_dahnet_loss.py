"""DAHNet's loss terms against float64 hand computations: ADSH's soft hash
and quantisation terms (gamma 200) plus 1/2 CE on the global logits and 1/6
on each part's, with the reference's one-hot float targets; DAHNet-- logs
the CE without training it; bad labels name the config key."""
import math

import pytest
import torch

from conftest import adsh_view
from mmqueryopt.models.losses.dahnet_loss import DAHNetLoss

LABELS = torch.tensor([0, 2, 1])
DATABASE_LABELS = torch.tensor([0, 1, 2, 2, 1])
INDICES = torch.tensor([0, 2, 4])


def hand_ce(logits, label):
    """-log softmax(logits)[label] by the definition."""
    total = sum(math.exp(z) for z in logits)
    return -(logits[label] - math.log(total))


def inputs():
    generator = torch.Generator().manual_seed(0)
    codes = torch.rand(3, 6, dtype=torch.float64, generator=generator) * 2 - 1
    database = torch.randint(2, (5, 6), generator=generator).double() * 2 - 1
    global_logits = torch.randn(3, 4, dtype=torch.float64,
                                generator=generator)
    part_logits = torch.randn(3, 3, 4, dtype=torch.float64,
                              generator=generator)
    view = adsh_view(LABELS, INDICES, database, DATABASE_LABELS,
                     gamma=200.0, similarity='soft')
    return codes, database, global_logits, part_logits, view


def test_terms_against_hand_computation():
    codes, database, global_logits, part_logits, view = inputs()
    losses = DAHNetLoss()(codes, view, global_logits=global_logits,
                          part_logits=part_logits)
    assert sorted(losses) == ['loss_cls', 'loss_hash', 'loss_part_cls',
                              'loss_quant']
    # Soft S: +1 same class, -P/N otherwise (P, N over the batch's rows).
    same = [[float(a == b) for b in DATABASE_LABELS.tolist()]
            for a in LABELS.tolist()]
    positives = sum(map(sum, same))
    ratio = positives / (15 - positives)
    k, n, m = 6, 3, 5
    hash_sum = quant_sum = 0.0
    for i in range(n):
        for j in range(m):
            s = 1.0 if same[i][j] else -ratio
            inner = sum(codes[i, b].item() * database[j, b].item()
                        for b in range(k))
            hash_sum += (k * s - inner)**2
        quant_sum += sum((codes[i, b].item() -
                          database[INDICES[i], b].item())**2
                         for b in range(k))
    assert losses['loss_hash'].item() == pytest.approx(
        hash_sum / (n * m) / k * 12, rel=1e-12)
    assert losses['loss_quant'].item() == pytest.approx(
        quant_sum / (n * m) * 200 / k * 12, rel=1e-12)
    global_ce = sum(hand_ce(global_logits[i].tolist(), LABELS[i].item())
                    for i in range(n)) / n
    part_ce = sum(
        hand_ce(part_logits[i, p].tolist(), LABELS[i].item())
        for i in range(n) for p in range(3)) / n
    assert losses['loss_cls'].item() == pytest.approx(global_ce / 2,
                                                      rel=1e-12)
    assert losses['loss_part_cls'].item() == pytest.approx(part_ce / 6,
                                                           rel=1e-12)


def test_multi_hot_rows_are_the_targets_as_given():
    codes, _, global_logits, part_logits, _ = inputs()
    multi_hot = torch.tensor([[1., 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
    view = adsh_view(multi_hot, INDICES, torch.ones(5, 6, dtype=torch.float64),
                     torch.eye(4)[[0, 1, 2, 2, 1]], similarity='soft')
    losses = DAHNetLoss()(codes, view, global_logits=global_logits,
                          part_logits=part_logits)
    # The reference's CE with float targets: the sum over the hot classes.
    expected = sum(
        hand_ce(global_logits[i].tolist(), c) for i in range(3)
        for c in range(4) if multi_hot[i, c]) / 3
    assert losses['loss_cls'].item() == pytest.approx(expected / 2,
                                                      rel=1e-12)


def test_dahnet_minus_logs_the_ce_and_trains_only_adsh():
    codes, _, global_logits, part_logits, view = inputs()
    global_logits.requires_grad_(True)
    full = DAHNetLoss()(codes, view, global_logits=global_logits,
                        part_logits=part_logits)
    minus = DAHNetLoss(add_classification=False)(
        codes, view, global_logits=global_logits, part_logits=part_logits)
    # MMEngine sums the keys with 'loss' in their names and logs the rest.
    assert sorted(minus) == ['cls_ce', 'loss_hash', 'loss_quant',
                             'part_cls_ce']
    assert minus['cls_ce'].item() == full['loss_cls'].item()
    assert minus['part_cls_ce'].item() == full['loss_part_cls'].item()
    assert not minus['cls_ce'].requires_grad


def test_bad_labels_and_pairings_name_the_key():
    codes, _, global_logits, part_logits, _ = inputs()
    view = adsh_view(torch.tensor([0, 4, 1]), INDICES,
                     torch.ones(5, 6, dtype=torch.float64), DATABASE_LABELS)
    with pytest.raises(ValueError, match=r'class id 4 is outside .*'
                       r'model.head.num_classes=4'):
        DAHNetLoss()(codes, view, global_logits=global_logits,
                     part_logits=part_logits)
    _, _, _, _, view = inputs()
    with pytest.raises(TypeError, match="DAHNetHashHead"):
        DAHNetLoss()(codes, view)
