"""Plain-torch transcriptions of the reference training loops, for replay
tests: A2-Net (aassxun/DSH_Analysis ``A_2_Net.py`` with
``models/A_2_net_loss.py``) and AGMH (Lx-zjwf/AGMH ``AGMH_train.py`` with
``models/ADSH_Loss.py`` and ``models/Feat_Loss.py``).

Written from reading those files and the facts in
``shared/reference/{a2net,agmh}_facts.md``; nothing here calls mmqueryopt's
losses or its B solver. Only the network's forward (``train_outputs``) is
ours, since the forward was checked against the reference's separately.

What the reference loops do, per ADSH round ``it``:

- S: +1 where a sampled image shares the database image's class, else -1;
  then ``r = sum(S) / sum(1 - S)`` and ``S = S * (1 + r) - r`` (so -1
  becomes -P/N), over the round's sampled rows against the whole database.
- every batch: ``zero_grad``, forward, ``U[rows] = F``, the loss,
  ``backward``, ``step`` of SGD over every parameter (A2-Net: momentum 0.9,
  weight decay 1e-4, no Nesterov, lr 1e-4; AGMH: the same with Nesterov and
  lr 1e-3); a pass's last batch may be short.
- A2-Net's loss: hash and quant (below); from round ``max_iter // 2``
  (``criterion.finetune``) plus ``mean((x_hat - x)^2)`` and
  ``mean((F^T F - b I)^2) / b / k`` with b the configured batch size.
  AGMH's: hash + quant + 0.5 * ADL.
- after the round: the lr schedule steps, then B is solved bit by bit:
  ``Q = (k S)^T U + gamma U_full``,
  ``B[:, j] = sign(Q[:, j] - B_rest (U_rest^T U[:, j]))``.
"""
from typing import Dict, List, Sequence

import torch
from torch import Tensor

# The reference optimisers (A2-Net: DSH_Analysis set_flag.py / run.py;
# AGMH: AGMH_train.py forces Nesterov, run.py lr 1e-3).
REFERENCE_SGD = dict(
    a2net=dict(lr=1e-4, momentum=0.9, weight_decay=1e-4, nesterov=False),
    agmh=dict(lr=1e-3, momentum=0.9, weight_decay=1e-4, nesterov=True))
GAMMA = 200.0


def soft_similarity(sampled_labels: Tensor, database_labels: Tensor,
                    num_classes: int) -> Tensor:
    """The reference's S over one-hot targets: (s, m), +1 / -P/N."""
    onehot = torch.eye(num_classes, dtype=torch.float64)
    shared = (onehot[sampled_labels] @ onehot[database_labels].T) > 0
    signed = torch.where(shared, 1.0, -1.0).to(torch.float64)
    ratio = signed.sum() / (1 - signed).sum()
    return signed * (1 + ratio) - ratio


def adsh_terms(codes: Tensor, database: Tensor, sim_rows: Tensor,
               rows_in_database: Tensor, gamma: float = GAMMA):
    """Hash and quantisation terms of one batch, the reference's scaling."""
    num, bits = codes.shape
    pairs = num * database.size(0)
    hash_term = (bits * sim_rows - codes @ database.T).square().sum()
    quant_term = (codes - database[rows_in_database]).square().sum()
    return (hash_term / pairs / bits * 12,
            quant_term / pairs * gamma / bits * 12)


def a2net_extra_terms(codes: Tensor, feats: Tensor, rebuilt: Tensor,
                      batch_size: int):
    """Reconstruction (mean over n*d) and decorrelation (mean over k*k,
    divided by the configured batch size and by k)."""
    bits = codes.size(1)
    rec = (rebuilt - feats).square().mean()
    gram = codes.T @ codes
    target = batch_size * torch.eye(bits, dtype=gram.dtype)
    decorr = (gram - target).square().mean() / batch_size / bits
    return rec, decorr


def attention_dispersion(attended: Tensor) -> Tensor:
    """AGMH's ADL over (n, D, C, H, W) SIEA outputs: channel max, softmax
    over positions, inner products of every descriptor pair, summed and
    divided by pairs * n."""
    num, descriptors = attended.shape[:2]
    probs = [
        attended[:, d].amax(dim=1).reshape(num, -1).softmax(dim=1)
        for d in range(descriptors)
    ]
    total = attended.new_zeros(())
    for i in range(descriptors):
        for j in range(i + 1, descriptors):
            total = total + (probs[i] * probs[j]).sum()
    return total / (descriptors * (descriptors - 1) // 2 * num)


@torch.no_grad()
def solve_dcc(database: Tensor, sampled: Tensor, sampled_rows: Tensor,
              sim: Tensor, gamma: float = GAMMA) -> Tensor:
    """The reference's bitwise B update (``torch.sign``: 0 stays 0)."""
    bits = sampled.size(1)
    scattered = torch.zeros_like(database)
    scattered[sampled_rows] = sampled
    target = (bits * sim).T @ sampled + gamma * scattered
    codes = database.clone()
    for bit in range(bits):
        keep = [b for b in range(bits) if b != bit]
        codes[:, bit] = torch.sign(target[:, bit] - codes[:, keep] @ (
            sampled[:, keep].T @ sampled[:, bit]))
    return codes


def replay(method: str, model, rounds: Sequence[dict], database: Tensor,
           database_labels: Tensor, num_classes: int, batch_size: int,
           lr: float, milestones: Sequence[int] = (), gamma: float = GAMMA,
           adl_weight: float = 0.5) -> Dict[str, List]:
    """Run the reference loop over recorded rounds.

    Args:
        method (str): ``'a2net'`` or ``'agmh'``.
        model: Its ``train_outputs(inputs)`` gives the head's training
            outputs (relaxed codes and what the loss needs).
        rounds (Sequence[dict]): Per round ``sampled`` ((s,) database rows,
            the round's draw, in the reference's U order) and ``batches``
            (dicts with ``inputs`` (n, 3, H, W) and ``rows`` (n,) database
            rows), in training order.
        database (Tensor): B at the start, (m, k).
        database_labels (Tensor): (m,) class ids.
        num_classes (int): For the one-hot targets.
        batch_size (int): The configured batch size (A2-Net's decorrelation
            normaliser).
        lr (float): Initial learning rate; x0.1 at each milestone round.
        milestones (Sequence[int]): MultiStepLR milestones, in rounds.

    Returns:
        dict: ``logs`` (per iteration, the logged terms), ``codes`` (B after
        each round), ``sampled`` (U of each round, (s, k)).
    """
    settings = dict(REFERENCE_SGD[method], lr=lr)
    optimizer = torch.optim.SGD(model.parameters(), **settings)
    logs, codes_per_round, sampled_per_round = [], [], []
    codes = database.clone()
    for it, one_round in enumerate(rounds):
        for group in optimizer.param_groups:
            group['lr'] = lr * 0.1**sum(it >= m for m in milestones)
        finetune = it >= len(rounds) // 2
        sampled_rows = one_round['sampled']
        position = {int(row): p for p, row in enumerate(sampled_rows)}
        sim = soft_similarity(database_labels[sampled_rows], database_labels,
                              num_classes)
        sampled = torch.zeros(len(sampled_rows), codes.size(1),
                              dtype=codes.dtype)
        model.train()
        for batch in one_round['batches']:
            optimizer.zero_grad()
            outputs = model.train_outputs(batch['inputs'])
            relaxed = outputs['relaxed_codes']
            local = torch.tensor([position[int(r)] for r in batch['rows']])
            sampled[local] = relaxed.detach()
            hash_term, quant_term = adsh_terms(relaxed, codes, sim[local],
                                               batch['rows'], gamma)
            log = dict(loss_hash=hash_term, loss_quant=quant_term)
            total = hash_term + quant_term
            if method == 'a2net':
                rec, decorr = a2net_extra_terms(
                    relaxed, outputs['holistic_feats'],
                    outputs['reconstructed_feats'], batch_size)
                if finetune:
                    total = total + rec + decorr
                    log.update(loss_rec=rec, loss_decorr=decorr)
                else:  # computed without gradient, not in the sum
                    log.update(loss_rec=rec.detach() * 0,
                               loss_decorr=decorr.detach() * 0)
            else:
                adl = adl_weight * attention_dispersion(
                    outputs['attended_maps'])
                total = total + adl
                log.update(loss_adl=adl)
            log['loss'] = total
            logs.append({k: v.item() for k, v in log.items()})
            total.backward()
            optimizer.step()
        codes = solve_dcc(codes, sampled, sampled_rows, sim, gamma)
        codes_per_round.append(codes.clone())
        sampled_per_round.append(sampled.clone())
    return dict(logs=logs, codes=codes_per_round, sampled=sampled_per_round)
