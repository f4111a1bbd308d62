"""Non-negative attention maps as distributions over positions, the form
the analysis tools show (``attention_maps`` of the necks)."""
import torch
from torch import Tensor


def maps_as_distributions(maps: Tensor) -> Tensor:
    """Each map divided by its sum over positions.

    Args:
        maps (Tensor): (B, M, h, w), non-negative.

    Returns:
        Tensor: (B, M, h, w), each map summing to 1; a map zeroed
        everywhere (e.g. by a ReLU) is returned uniform.
    """
    total = maps.sum(dim=(2, 3), keepdim=True)
    uniform = torch.full_like(maps, 1.0 / maps[0, 0].numel())
    return torch.where(total > 0, maps / total.clamp_min(1e-30), uniform)
