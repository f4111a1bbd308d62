"""FISH's feature filter (as aassxun/DSH_Analysis ``models/fish.py`` runs
it): the last feature map pooled with its salient positions at full weight
and the rest halved."""
from typing import Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor

from mmqueryopt.registry import MODELS


@MODELS.register_module()
class FeatureFilterNeck(BaseModule):
    """Average pooling of ``fm * M``, fm the backbone's last map.

    With A the channel sum of fm (no gradient through it) and a its mean
    over the positions of each image, M is 1 where A > a, 0.5 where A < a
    and 0 where A = a. The map goes on to the head too, for the loss's
    peak erasing.

    Returns (forward):
        tuple[Tensor, Tensor]: the filtered pooled feature (B, C) and the
        map fm (B, C, h, w).
    """

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Args:
            inputs (tuple[Tensor]): The backbone's maps; the last is used.
        """
        fm = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if fm.dim() != 4:
            raise ValueError(f'FeatureFilterNeck expects (B, C, h, w) maps, '
                             f'got {tuple(fm.shape)}')
        saliency = fm.detach().sum(1, keepdim=True)
        mean = saliency.mean((2, 3), keepdim=True)
        weights = (saliency > mean).to(fm.dtype) + 0.5 * (
            saliency < mean).to(fm.dtype)
        return (fm * weights).mean((2, 3)), fm
