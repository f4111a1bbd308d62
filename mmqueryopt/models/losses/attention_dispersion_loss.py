"""AGMH's attention dispersion loss (ADL): descriptors should attend to
different places."""
import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import position_distributions


def attention_dispersion(maps: Tensor) -> Tensor:
    """Mean inner product of the position distributions over the C(D, 2)
    descriptor pairs and the batch.

    ``ADL = sum_{i<j} sum_b <p_i^b, p_j^b> / (C(D, 2) * B)``, in [0, 1]:
    1 when all descriptors put their whole mass on one and the same
    position, 1 / N when every distribution is uniform over N positions.

    Args:
        maps (Tensor): (B, D, C, H, W), D >= 2.

    Returns:
        Tensor: scalar.
    """
    num_descriptors = maps.size(1) if maps.dim() == 5 else 0
    if num_descriptors < 2:
        raise ValueError(
            f'the attention dispersion loss compares pairs of descriptors: '
            f'got maps of shape {tuple(maps.shape)}, expected (B, D, C, H, '
            f'W) with D >= 2')
    dists = position_distributions(maps)
    # All pairwise inner products at once; the strict upper triangle holds
    # each pair once.
    gram = dists @ dists.transpose(1, 2)  # (B, D, D)
    pairs = torch.triu_indices(num_descriptors, num_descriptors, offset=1)
    num_pairs = num_descriptors * (num_descriptors - 1) // 2
    return gram[:, pairs[0], pairs[1]].sum() / (num_pairs * maps.size(0))


@MODELS.register_module()
class AttentionDispersionLoss(nn.Module):
    """Weighted :func:`attention_dispersion`.

    Args:
        loss_weight (float): Defaults to 0.5 (AGMH's ``f_rat``, fixed for
            all datasets and code lengths).
    """

    def __init__(self, loss_weight: float = 0.5):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, maps: Tensor) -> Tensor:
        """Args:
            maps (Tensor): (B, D, C, H, W), the SIEA outputs.

        Returns:
            Tensor: scalar, ``loss_weight * ADL``.
        """
        # In fp32 even under AMP: the softmax over positions and the
        # products of probabilities near 1/N lose most digits in half.
        with torch.autocast(maps.device.type, enabled=False):
            maps = maps.to(torch.promote_types(maps.dtype, torch.float32))
            return self.loss_weight * attention_dispersion(maps)
