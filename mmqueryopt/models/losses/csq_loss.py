"""CSQ (Yuan et al., CVPR 2020): each class owns a binary hash centre, and
the codes are pulled to their class's centre.

As aassxun/DSH_Analysis ``csq.py`` runs it: centres are the rows of
``[H; -H]`` (H the k x k Hadamard matrix) when k is 16, 32 or 64, topped up
with random balanced codes when the classes outnumber 2k; for other lengths
(12, 24, 48: every fine-grained run) every centre is a random balanced code
(k/2 bits -1), the whole set redrawn up to 20 times until its minimum
pairwise Hamming distance exceeds k/4 and its mean reaches k/2 (else the
last draw is kept).
"""
import random
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from ..databases import DatabaseView

# The lengths the reference takes centres from a Hadamard matrix for.
_HADAMARD_LENGTHS = (16, 32, 64)
_DRAWS = 20


def hadamard(order: int) -> Tensor:
    """Sylvester's Hadamard matrix of a power-of-two ``order`` (+-1)."""
    matrix = torch.ones(1, 1)
    while matrix.size(0) < order:
        matrix = torch.cat([torch.cat([matrix, matrix], 1),
                            torch.cat([matrix, -matrix], 1)])
    return matrix


def hash_centers(num_classes: int, code_length: int,
                 seed: int = 0) -> Tensor:
    """CSQ's class centres, the reference's construction.

    Args:
        num_classes (int): C.
        code_length (int): k.
        seed (int): Of the random balanced codes (python's ``random``, as
            the reference; the same distribution, not its stream, which
            depends on everything the reference drew before).

    Returns:
        Tensor: (C, k) in {-1, +1}.
    """
    rng = random.Random(seed)
    if code_length in _HADAMARD_LENGTHS:
        fixed = hadamard(code_length)
        fixed = torch.cat([fixed, -fixed])[:num_classes]
    else:
        fixed = torch.zeros(0, code_length)
    if len(fixed) == num_classes:
        return fixed
    centers = fixed
    for _ in range(_DRAWS):
        drawn = torch.ones(num_classes - len(fixed), code_length)
        for row in drawn:
            row[rng.sample(range(code_length), code_length // 2)] = -1
        centers = torch.cat([fixed, drawn])
        distances = (centers[:, None] != centers[None]).sum(-1).float()
        pairs = distances[tuple(torch.triu_indices(num_classes,
                                                   num_classes, 1))]
        if len(pairs) == 0 or (pairs.min() > code_length / 4
                               and pairs.mean() >= code_length / 2):
            break
    return centers


@MODELS.register_module()
class CSQLoss(nn.Module):
    """Binary cross-entropy of the codes to their class's centre, plus a
    quantisation term:

    ``BCE((u + 1) / 2, (c_y + 1) / 2) + lambd * mean((|u| - 1)^2)``,

    both means over the batch's n x k entries (the BCE's log clamped at
    -100 as torch's, where a tanh saturates to +-1). Multi-hot labels take
    the sign of their classes' centres' sum, a fixed random bit where the
    sum is 0 (the reference's multi-label rule).

    The database is the network's own codes (``EncodedDatabase``): the loss
    uses only the batch's labels (``view.labels``).

    Args:
        num_classes (int): C, the training set's classes.
        code_length (int): k; the head's ``code_length``.
        lambd (float): Weight of the quantisation term. Defaults to 0.1.
        seed (int): Of the random centres. Defaults to 0.

    Buffers (saved in checkpoints, so a resumed or fine-tuned model keeps
    its centres): ``centers`` (C, k) and ``tie_bits`` (k,).
    """

    def __init__(self,
                 num_classes: int,
                 code_length: int,
                 lambd: float = 0.1,
                 seed: int = 0):
        super().__init__()
        if num_classes < 1 or code_length < 2:
            raise ValueError(
                f'model.loss needs num_classes >= 1 and code_length >= 2, got '
                f'{num_classes} and {code_length}')
        self.lambd = lambd
        self.register_buffer('centers',
                             hash_centers(num_classes, code_length, seed))
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer(
            'tie_bits',
            torch.randint(2, (code_length, ), generator=generator) * 2. - 1)

    def target_codes(self, labels: Tensor) -> Tensor:
        """The centre each image is pulled to.

        Args:
            labels (Tensor): (n,) class ids or (n, C) multi-hot.

        Returns:
            Tensor: (n, k) in {-1, +1}.
        """
        num_classes = self.centers.size(0)
        if labels.dim() == 1:
            if len(labels) and int(labels.max()) >= num_classes:
                raise ModelConfigError(
                    f'class id {int(labels.max())} is outside '
                    f'model.loss.num_classes={num_classes}: set it to the '
                    f"training set's number of classes")
            return self.centers[labels]
        if labels.size(1) != num_classes:
            raise ValueError(
                f'labels have {labels.size(1)} classes, '
                f'model.loss.num_classes={num_classes}')
        summed = labels.to(self.centers.dtype) @ self.centers
        summed = torch.where(summed == 0, self.tie_bits.expand_as(summed),
                             summed)
        return torch.where(summed > 0, 1.0, -1.0).to(self.centers.dtype)

    def forward(self, relaxed_codes: Tensor, view: DatabaseView,
                **train_outputs) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): u, (n, k), in [-1, 1] (tanh).
            view (DatabaseView): Needs ``labels``; a database with codes
                (a learned B) is refused.

        Returns:
            dict[str, Tensor]: ``loss_center`` and ``loss_quant``.
        """
        if train_outputs:
            raise TypeError(f'CSQLoss got training outputs '
                            f'{sorted(train_outputs)} that it does not use')
        if view.database_codes is not None:
            raise TypeError(
                'CSQLoss pulls codes to class centres and evaluates against '
                "the network's own codes: use model.database=dict(type="
                "'EncodedDatabase') with it, not a learned database")
        centers = self.target_codes(view.labels).to(relaxed_codes.dtype)
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            codes = relaxed_codes.float() if relaxed_codes.dtype in (
                torch.float16, torch.bfloat16) else relaxed_codes
            loss_center = F.binary_cross_entropy(
                (codes + 1) / 2, (centers.to(codes.dtype) + 1) / 2)
            loss_quant = self.lambd * (codes.abs() - 1).pow(2).mean()
        return dict(loss_center=loss_center, loss_quant=loss_quant)
