"""Where each attribute descriptor looks: its distribution over positions,
read by AGMH's attention dispersion loss and shown by its neck."""
from torch import Tensor


def position_distributions(maps: Tensor) -> Tensor:
    """Each descriptor's attention over positions, as ADL reads it: the
    channel-wise maximum, softmax over the H * W positions.

    Args:
        maps (Tensor): (B, D, C, H, W), D descriptor maps per image.

    Returns:
        Tensor: (B, D, H * W), each row summing to 1.
    """
    if maps.dim() != 5:
        raise ValueError(f'expected descriptor maps (B, D, C, H, W), got '
                         f'shape {tuple(maps.shape)}')
    return maps.amax(dim=2).flatten(2).softmax(dim=-1)
