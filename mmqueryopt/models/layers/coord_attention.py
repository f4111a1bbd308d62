"""Coordinate attention (Hou et al., CVPR 2021) in the form DAHNet's
reference code uses: one channel gate from the product of the row and the
column averages."""
import torch.nn.functional as F
from torch import Tensor, nn


class CoordinateAttention(nn.Module):
    """``x * sigmoid(conv2(hswish(bn1(conv1(mean_w(x) * mean_h(x))))))``.

    ``mean_w(x)`` (B, C, h, 1) averages each row, ``mean_h(x)`` (B, C, 1, w)
    each column; their broadcast product (B, C, h, w) goes through a 1x1
    conv to ``max(min_channels, C // reduction)`` channels (with bias), BN,
    h-swish, a 1x1 conv back to C (with bias) and a sigmoid: a gate per
    channel and position. (The reference class's ``groups=4`` is this
    reduction.)

    Args:
        channels (int): C.
        reduction (int): Width ratio of the middle layer. Defaults to 4.
        min_channels (int): Least middle width. Defaults to 8.

    Returns (forward):
        Tensor: (B, C, h, w), the gated input.
    """

    def __init__(self, channels: int, reduction: int = 4,
                 min_channels: int = 8):
        super().__init__()
        middle = max(min_channels, channels // reduction)
        self.conv1 = nn.Conv2d(channels, middle, 1)
        self.bn1 = nn.BatchNorm2d(middle)
        self.conv2 = nn.Conv2d(middle, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Gate x.

        Args:
            x (Tensor): (B, C, h, w).

        Returns:
            Tensor: (B, C, h, w).
        """
        mixed = x.mean(dim=3, keepdim=True) * x.mean(dim=2, keepdim=True)
        hidden = self.bn1(self.conv1(mixed))
        # h-swish as the reference writes it: x * relu6(x + 3) / 6.
        hidden = hidden * (F.relu6(hidden + 3) / 6)
        return x * self.conv2(hidden).sigmoid()
