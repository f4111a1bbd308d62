"""DAHNet's channel fusion module (CFM): coordinate attention with a
residual, then a convolutional MLP over the channels."""
from torch import Tensor, nn

from .coord_attention import CoordinateAttention


class ConvMlp(nn.Module):
    """The reference's ConvMlp: 1x1 conv C -> rC + GELU + BN, dropout,
    depthwise 3x3 conv with a residual, GELU, BN, 1x1 conv rC -> C + BN,
    dropout (all convs with bias).

    The last dropout draws its mask over (B, h*w, C), the layout the
    reference applies it in, so that a seeded run drops the same units.

    Args:
        channels (int): C.
        ratio (int): Hidden width ratio r. Defaults to 3.
        dropout (float): Dropout probability. Defaults to 0.1.

    Returns (forward):
        Tensor: (B, C, h, w).
    """

    def __init__(self, channels: int, ratio: int = 3, dropout: float = 0.1):
        super().__init__()
        hidden = channels * ratio
        self.conv1 = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.BatchNorm2d(hidden))
        self.proj = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.proj_act = nn.GELU()
        self.proj_bn = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Sequential(
            nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Mix channels.

        Args:
            x (Tensor): (B, C, h, w).

        Returns:
            Tensor: (B, C, h, w).
        """
        x = self.drop(self.conv1(x))
        x = self.proj_bn(self.proj_act(self.proj(x) + x))
        x = self.conv2(x)
        tokens = self.drop(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(x.shape)


class ChannelFusion(nn.Module):
    """CFM of DAHNet (Jiang et al., ACM MM 2023):
    ``mlp(x + coord_attention(x))``, no residual around the MLP.

    The reference reshapes to a hard-coded 7x7 map inside its MLP, so it
    runs only where the map is 7x7 (ResNet-50's layer4 at 224 pixels); this
    module takes the map's own size, which is the same computation at 7x7.

    Args:
        channels (int): C.
        ratio (int): Hidden width ratio of the MLP. Defaults to 3.
        reduction (int): Coordinate attention's width ratio. Defaults to 4.
        dropout (float): The MLP's dropout. Defaults to 0.1.

    Returns (forward):
        Tensor: (B, C, h, w).
    """

    def __init__(self,
                 channels: int,
                 ratio: int = 3,
                 reduction: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.coord_attention = CoordinateAttention(channels, reduction)
        self.mlp = ConvMlp(channels, ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Fuse channels.

        Args:
            x (Tensor): (B, C, h, w).

        Returns:
            Tensor: (B, C, h, w).
        """
        return self.mlp(x + self.coord_attention(x))
