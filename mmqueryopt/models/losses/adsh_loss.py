"""Asymmetric deep supervised hashing (ADSH, Jiang & Li, AAAI 2018).

The network's relaxed codes F of the sampled images are fitted to discrete
database codes B of every training image, and B is then solved in closed form
one bit (column) at a time. Both halves optimise the same objective

    J(B) = ||F B^T - L S||^2 + gamma ||B[omega] - F||^2,

with S the class similarity of the sampled and database images, L the number
of relaxed bits and omega the sampled images' database indices. S is {0, 1}
(QueryOpt) or the soft form of the SEMICON / A2-Net / AGMH code: +1 for a
shared class, -P/N otherwise, with P and N the similar and dissimilar pairs
of the round's sampled images against the database.
"""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS


def similarity(labels_a: Tensor, labels_b: Tensor,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """S[i, j] = 1 if ``a_i`` and ``b_j`` share a class, else 0.

    Args:
        labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
        labels_b (Tensor): (m,) class ids or (m, C) multi-hot.
        dtype (torch.dtype): Of the result.

    Returns:
        Tensor: (n, m).
    """
    if labels_a.dim() == 1:
        return (labels_a[:, None] == labels_b[None, :]).to(dtype)
    return (labels_a.float() @ labels_b.float().T > 0).to(dtype)


def soft_negative(labels_a: Tensor, labels_b: Tensor) -> float:
    """The soft similarity's value for a dissimilar pair: -P/N.

    P and N count the pairs of ``labels_a`` x ``labels_b`` that share a
    class and that do not (the authors' ``r = sum(S) / sum(1 - S)`` over S in
    {-1, +1}, then ``S * (1 + r) - r``).

    Args:
        labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
        labels_b (Tensor): (m,) or (m, C).

    Returns:
        float: -P/N; 0 when every pair shares a class.
    """
    return _negative_ratio(similarity(labels_a, labels_b, torch.bool))


def _negative_ratio(sim: Tensor) -> float:
    """-P/N of a similarity matrix (nonzero = similar), counted exactly."""
    similar = int((sim > 0).sum())
    dissimilar = sim.numel() - similar
    return -similar / dissimilar if dissimilar else 0.0


def _soften(sim: Tensor, negative: float) -> Tensor:
    """The soft form of a {0, 1} similarity: 1 stays, 0 becomes
    ``negative``."""
    return torch.where(sim > 0, sim.new_tensor(1.0), sim.new_tensor(negative))


_SIMILARITIES = ('binary', 'soft')


@MODELS.register_module()
class ADSHLoss(nn.Module):
    """ADSH's loss on a batch, with the authors' scaling.

    ``hash = sum((L*S - F B^T)^2) / (n*m) / L * 12`` and
    ``quant = sum((F - B[omega])^2) / (n*m) * gamma / L * 12``; the 12/L
    factor keeps the magnitude of a 12-bit run whatever L is.

    Methods that add terms (A2-Net, AGMH) subclass it and override
    :meth:`extra_losses`, which receives what their head returns besides
    the relaxed codes; the training round (:meth:`start_round`) lets a term
    start late.

    Args:
        gamma (float): Weight of the quantisation term. Defaults to 200.
        scale_bits (int): The numerator of the 12/L factor. Defaults to 12.
        similarity (str): ``'binary'``: S in {0, 1} (QueryOpt, ADSH).
            ``'soft'``: +1 for a shared class, -P/N otherwise, P/N counted
            over the round's sampled images against the database (SEMICON,
            A2-Net, AGMH code). Defaults to ``'binary'``.
    """

    def __init__(self,
                 gamma: float = 200.0,
                 scale_bits: int = 12,
                 similarity: str = 'binary'):
        super().__init__()
        if similarity not in _SIMILARITIES:
            raise ValueError(f'similarity must be one of {_SIMILARITIES}, '
                             f'got {similarity!r}')
        self.gamma = gamma
        self.scale_bits = scale_bits
        self.similarity = similarity
        # Set by start_round(); -1 until the first round.
        self.round_index = -1
        self.round_negative: Optional[float] = None

    def start_round(self, round_index: int, sampled_labels: Tensor,
                    database_labels: Tensor) -> None:
        """Note the round (0-based) and its sampled images' labels.

        Args:
            round_index (int): The ADSH round about to be trained.
            sampled_labels (Tensor): (s,) or (s, C), the round's sample.
            database_labels (Tensor): (m,) or (m, C).
        """
        self.round_index = round_index
        self.round_negative = (
            soft_negative(sampled_labels, database_labels)
            if self.similarity == 'soft' else None)

    def target_similarity(self, labels_a: Tensor, labels_b: Tensor,
                          dtype: torch.dtype = torch.float32) -> Tensor:
        """S for ``labels_a`` x ``labels_b`` in this loss's form.

        Args:
            labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
            labels_b (Tensor): (m,) or (m, C).
            dtype (torch.dtype): Of the result.

        Returns:
            Tensor: (n, m). The soft form's dissimilar value is the round's
            (:meth:`start_round`), else -P/N of these labels.
        """
        sim = similarity(labels_a, labels_b, dtype)
        if self.similarity == 'binary':
            return sim
        return _soften(sim, self.round_negative
                       if self.round_negative is not None else
                       _negative_ratio(sim))

    def extra_losses(self, relaxed_codes: Tensor,
                     **train_outputs) -> Dict[str, Tensor]:
        """A method's terms beyond ADSH's; plain ADSH has none.

        Args:
            relaxed_codes (Tensor): F, (n, L).
            **train_outputs: What the head returned besides the relaxed
                codes, and ``inputs``, the batch's images.

        Returns:
            dict[str, Tensor]: Named scalar terms, added to the loss dict.
        """
        unused = sorted(set(train_outputs) - {'inputs'})
        if unused:
            raise TypeError(
                f'{type(self).__name__} got training outputs {unused} that it '
                f'does not use: pair the head with its method\'s loss (e.g. '
                f'A2NetLoss, AGMHLoss)')
        return {}

    def forward(self, relaxed_codes: Tensor, batch_labels: Tensor,
                batch_indices: Tensor, database_codes: Tensor,
                database_labels: Tensor,
                **train_outputs) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): F, (n, L).
            batch_labels (Tensor): (n,) class ids or (n, C) multi-hot.
            batch_indices (Tensor): (n,) the batch's rows in the database.
            database_codes (Tensor): B, (m, L).
            database_labels (Tensor): (m,) or (m, C).
            **train_outputs: Passed to :meth:`extra_losses`.

        Returns:
            dict[str, Tensor]: ``loss_hash`` and ``loss_quant``, scalars,
            and the method's extra terms.
        """
        # At least fp32 even under AMP: F B^T reaches L (96), where bf16
        # keeps only ~2 significant digits, and the squared sums exceed
        # fp16's range. A float64 model stays float64.
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            dtype = torch.promote_types(relaxed_codes.dtype, torch.float32)
            relaxed_codes = relaxed_codes.to(dtype)
            database_codes = database_codes.to(dtype)
            num_bits = relaxed_codes.size(1)
            sim = self.target_similarity(batch_labels, database_labels,
                                         dtype)
            norm = sim.numel() * num_bits / self.scale_bits
            loss_hash = (num_bits * sim -
                         relaxed_codes @ database_codes.T).pow(2).sum() / norm
            loss_quant = (relaxed_codes - database_codes[batch_indices]).pow(
                2).sum() * self.gamma / norm
        return dict(loss_hash=loss_hash, loss_quant=loss_quant,
                    **self.extra_losses(relaxed_codes, **train_outputs))

    @torch.no_grad()
    def solve_database_codes(self, sampled_codes: Tensor,
                             sampled_indices: Tensor, database_codes: Tensor,
                             database_labels: Tensor) -> Tensor:
        """ADSH's discrete step: minimise J over B one column at a time.

        With V = U^T U, column b's exact minimiser given the others is
        ``sign(Q_b - B_rest V_rest,b)`` where ``Q = L S^T U + gamma U_full``
        (U_full: U scattered into the sampled rows, zeros elsewhere).

        Args:
            sampled_codes (Tensor): U, (s, L) the relaxed codes of the
                round's sampled images.
            sampled_indices (Tensor): (s,) their database rows.
            database_codes (Tensor): B, (m, L); updated column by column
                starting from these values.
            database_labels (Tensor): (m,) or (m, C).

        Returns:
            Tensor: the new B, (m, L) in {-1, +1}. A zero argument gives +1.
        """
        num_bits = sampled_codes.size(1)
        sim = similarity(database_labels[sampled_indices], database_labels,
                         sampled_codes.dtype)
        if self.similarity == 'soft':
            # This sample's own -P/N (the round's, when start_round saw it).
            sim = _soften(sim, _negative_ratio(sim))
        scattered = torch.zeros_like(database_codes)
        scattered[sampled_indices] = sampled_codes
        target = num_bits * sim.T @ sampled_codes + self.gamma * scattered
        gram = sampled_codes.T @ sampled_codes
        codes = database_codes.clone()
        for bit in range(num_bits):
            rest = torch.arange(num_bits, device=codes.device) != bit
            arg = target[:, bit] - codes[:, rest] @ gram[rest, bit]
            codes[:, bit] = torch.where(arg >= 0, 1.0, -1.0)
        return codes
