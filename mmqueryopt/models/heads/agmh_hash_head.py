"""AGMH's hash layer: pooled descriptors, one bare projection, tanh."""
import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from .base_hash_head import BaseHashHead


@MODELS.register_module()
class AGMHHashHead(BaseHashHead):
    """``u = tanh(H [GAP(F_0); ...; GAP(F_{D-1})])`` with H (k x D*C), no
    bias.

    The codes read the descriptor maps before SIEA; the SIEA outputs pass
    through to the loss in training only.

    Args:
        code_length (int): Bits k.
        in_channels (int): C, channels of each descriptor map. Defaults to
            512.
        num_descriptors (int): D. Defaults to 6.
        init_cfg (dict, optional): MMEngine init config.
    """

    # One row per bit: the retriever reads a checkpoint's code length here.
    code_length_param = 'hash_weight'

    def __init__(self,
                 code_length: int,
                 in_channels: int = 512,
                 num_descriptors: int = 6,
                 init_cfg=None):
        # No auxiliary branches: B is as wide as the code.
        super().__init__(code_length, init_cfg=init_cfg)
        self.in_channels = in_channels
        self.num_descriptors = num_descriptors
        self.hash_weight = nn.Parameter(
            torch.empty(code_length, num_descriptors * in_channels))
        # nn.Linear's default, as the authors: U(+-1 / sqrt(D * C)).
        nn.init.kaiming_uniform_(self.hash_weight, a=math.sqrt(5))

    def forward(self, feats: Tuple[Tensor, Optional[Tensor]]
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Relaxed codes in (-1, 1).

        Args:
            feats (tuple[Tensor, Tensor | None]): The neck's descriptor maps
                (B, D, C, H, W) and SIEA outputs (same shape, or None).

        Returns:
            Tensor | dict: (B, k) in eval mode; in training a dict with
            ``relaxed_codes`` (B, k) and ``attended_maps``, the SIEA
            outputs for the dispersion loss.
        """
        descriptors, attended = feats
        batch, num, channels = descriptors.shape[:3]
        if (num, channels) != (self.num_descriptors, self.in_channels):
            raise ValueError(
                f'AGMHHashHead got {num} descriptor maps of {channels} '
                f'channels, but its hash layer expects '
                f'{self.num_descriptors} x {self.in_channels} '
                f'(model.head.num_descriptors, model.head.in_channels must '
                f'match the neck)')
        pooled = descriptors.mean(dim=(3, 4)).reshape(batch, -1)
        relaxed_codes = torch.tanh(F.linear(pooled, self.hash_weight))
        if not self.training:
            return relaxed_codes
        if attended is None:
            raise ValueError(
                'AGMHHashHead in training needs the SIEA outputs: the neck '
                'returned None (is it in eval mode?)')
        return dict(relaxed_codes=relaxed_codes, attended_maps=attended)
