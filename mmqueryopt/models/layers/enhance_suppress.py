"""DAHNet's feature enhancing and suppressing module (FESM): stripe scores
make a weight map that boosts the map's salient region and damps its peak
for the next call."""
from typing import Tuple

import torch
from torch import Tensor, nn


def _stripe_scorer(in_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 1, 1), nn.BatchNorm2d(1), nn.ReLU())


class EnhanceSuppress(nn.Module):
    """FESM of DAHNet (Jiang et al., ACM MM 2023), as its reference code.

    The map (B, C, h, w) is cut into ``num_stripes`` horizontal stripes
    (rows) and as many vertical ones (columns). ``row_scorer`` (1x1 conv
    C -> 1 with bias, BN, ReLU) scores each horizontal stripe, averaged
    over the stripe: a softmax over the stripes gives each row its
    stripe's weight; ``col_scorer`` does the same for the columns. Their
    outer product is the weight map W (B, 1, h, w). Then

    * ``boost = x + boost_scale * x * W``;
    * ``suppressed = x * m``, m = ``peak_scale`` where W >= ``peak_ratio``
      times the image's maximum of W, else 1 (no gradient through m).

    Each stripe passes its scorer on its own, so in training BatchNorm
    normalises every stripe's batch separately, as the reference does.

    Args:
        in_channels (int): Channels C.
        num_stripes (int): Stripes per direction (the reference's k = 2).
        boost_scale (float): alpha of the boost. Defaults to 0.5.
        peak_scale (float): What the peak is multiplied by (the
            reference's beta). Defaults to 0.5.
        peak_ratio (float): Share of the maximum from which a position
            counts as the peak. Defaults to 0.95.

    Returns (forward):
        tuple[Tensor, Tensor]: boost and suppressed, (B, C, h, w) each.
    """

    def __init__(self,
                 in_channels: int,
                 num_stripes: int = 2,
                 boost_scale: float = 0.5,
                 peak_scale: float = 0.5,
                 peak_ratio: float = 0.95):
        super().__init__()
        self.num_stripes = num_stripes
        self.boost_scale = boost_scale
        self.peak_scale = peak_scale
        self.peak_ratio = peak_ratio
        self.row_scorer = _stripe_scorer(in_channels)
        self.col_scorer = _stripe_scorer(in_channels)

    def _stripe_weights(self, x: Tensor, scorer: nn.Module,
                        dim: int) -> Tensor:
        """Softmax over the stripes along ``dim`` of their mean scores,
        repeated over each stripe's rows (dim 2) or columns (dim 3)."""
        stripe = x.size(dim) // self.num_stripes
        scores = torch.cat([
            scorer(part).mean(dim=(2, 3), keepdim=True)
            for part in torch.split(x, stripe, dim=dim)
        ], dim=dim)
        return scores.softmax(dim=dim).repeat_interleave(stripe, dim=dim)

    def weight_map(self, x: Tensor) -> Tensor:
        """W, the product of the row and the column stripe weights.

        Args:
            x (Tensor): (B, C, h, w), h and w multiples of ``num_stripes``.

        Returns:
            Tensor: (B, 1, h, w).
        """
        height, width = x.shape[2:]
        if height % self.num_stripes or width % self.num_stripes:
            raise ValueError(
                f'DAHNet\'s FESM cuts the {height}x{width} map into '
                f'{self.num_stripes} stripes each way: its sides must be '
                f'multiples of {self.num_stripes} (the input size sets the '
                f'map: 224 gives ResNet-50\'s 14x14)')
        return (self._stripe_weights(x, self.row_scorer, 2) *
                self._stripe_weights(x, self.col_scorer, 3))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Boosted and peak-suppressed maps.

        Args:
            x (Tensor): (B, C, h, w).

        Returns:
            tuple[Tensor, Tensor]: (B, C, h, w) each.
        """
        weights = self.weight_map(x)
        boost = x + self.boost_scale * (x * weights)
        with torch.no_grad():
            peak = weights.amax(dim=(1, 2, 3), keepdim=True)
            keep = torch.where(weights < peak * self.peak_ratio, 1.0,
                               self.peak_scale).to(x.dtype)
        return boost, x * keep
