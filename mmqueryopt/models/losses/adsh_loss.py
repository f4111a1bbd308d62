"""Asymmetric deep supervised hashing (ADSH, Jiang & Li, AAAI 2018).

The network's relaxed codes F of the sampled images are fitted to discrete
database codes B of every training image, and B is then solved in closed form
one bit (column) at a time. Both halves optimise the same objective

    J(B) = ||F B^T - L S||^2 + gamma ||B[omega] - F||^2,

with S in {0, 1} the class similarity of the sampled and database images,
L the number of relaxed bits and omega the sampled images' database indices.
"""
from typing import Dict

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


@MODELS.register_module()
class ADSHLoss(nn.Module):
    """ADSH's loss on a batch, with the authors' scaling.

    ``hash = sum((L*S - F B^T)^2) / (n*m) / L * 12`` and
    ``quant = sum((F - B[omega])^2) / (n*m) * gamma / L * 12``; the 12/L
    factor keeps the magnitude of a 12-bit run whatever L is.

    Args:
        gamma (float): Weight of the quantisation term. Defaults to 200.
        scale_bits (int): The numerator of the 12/L factor. Defaults to 12.
    """

    def __init__(self, gamma: float = 200.0, scale_bits: int = 12):
        super().__init__()
        self.gamma = gamma
        self.scale_bits = scale_bits

    def forward(self, relaxed_codes: Tensor, batch_labels: Tensor,
                batch_indices: Tensor, database_codes: Tensor,
                database_labels: Tensor) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): F, (n, L).
            batch_labels (Tensor): (n,) class ids or (n, C) multi-hot.
            batch_indices (Tensor): (n,) the batch's rows in the database.
            database_codes (Tensor): B, (m, L).
            database_labels (Tensor): (m,) or (m, C).

        Returns:
            dict[str, Tensor]: ``loss_hash`` and ``loss_quant``, scalars.
        """
        # In fp32 even under AMP: F B^T reaches L (96), where bf16 keeps
        # only ~2 significant digits, and the squared sums exceed fp16's range.
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            relaxed_codes = relaxed_codes.float()
            database_codes = database_codes.float()
            num_bits = relaxed_codes.size(1)
            sim = similarity(batch_labels, database_labels)
            norm = sim.numel() * num_bits / self.scale_bits
            loss_hash = (num_bits * sim -
                         relaxed_codes @ database_codes.T).pow(2).sum() / norm
            loss_quant = (relaxed_codes - database_codes[batch_indices]).pow(
                2).sum() * self.gamma / norm
        return dict(loss_hash=loss_hash, loss_quant=loss_quant)

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
