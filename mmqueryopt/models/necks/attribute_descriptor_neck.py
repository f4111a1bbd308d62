"""AGMH's attribute grouping: parallel descriptor branches on one map, each
with a stepwise interactive external attention (SIEA) block for training."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import StepwiseExternalAttention, position_distributions


@MODELS.register_module()
class AttributeDescriptorNeck(BaseModule):
    """D descriptor maps of the last backbone map, plus their SIEA outputs
    in training.

    Branch d is a 1x1 conv (with bias) + BN + ReLU giving the descriptor map
    F_d; a SIEA block turns F_d into G_d, which only the attention
    dispersion loss reads. The codes come from F_d (the head pools them), so
    **SIEA runs in training only: in eval mode it is skipped** and the
    second output is None. This changes no code: the released AGMH model
    runs SIEA at test time too and throws its outputs away
    (``siea_in_eval=True`` does the same, for comparisons).

    Args:
        in_channels (int): Channels of the backbone's last map. Defaults to
            2048 (ResNet-50).
        descriptor_channels (int): Channels of each descriptor map.
            Defaults to 512.
        num_descriptors (int): D, at least 2 (the dispersion loss compares
            pairs). Defaults to 6 (the authors' ``top_k + 1``).
        num_heads (int): SIEA query heads. Defaults to 4.
        memory_units (int): SIEA memory rows. Defaults to 128.
        siea_in_eval (bool): Run SIEA in eval mode as well. Defaults to
            False.
        init_cfg (dict, optional): MMEngine init config.

    Returns (forward):
        tuple[Tensor, Tensor | None]: descriptor maps (B, D, C, H, W) and
        SIEA outputs of the same shape (None in eval mode unless
        ``siea_in_eval``).
    """

    def __init__(self,
                 in_channels: int = 2048,
                 descriptor_channels: int = 512,
                 num_descriptors: int = 6,
                 num_heads: int = 4,
                 memory_units: int = 128,
                 siea_in_eval: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_descriptors < 2:
            raise ValueError(
                f'model.neck.num_descriptors must be >= 2: the attention '
                f'dispersion loss compares pairs of descriptors, got '
                f'{num_descriptors}')
        self.in_channels = in_channels
        self.descriptor_channels = descriptor_channels
        self.num_descriptors = num_descriptors
        self.siea_in_eval = siea_in_eval
        self.descriptor_convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, descriptor_channels, 1),
                nn.BatchNorm2d(descriptor_channels), nn.ReLU(inplace=True))
            for _ in range(num_descriptors))
        self.siea_blocks = nn.ModuleList(
            StepwiseExternalAttention(descriptor_channels, num_heads,
                                      memory_units)
            for _ in range(num_descriptors))
        for branch in self.descriptor_convs:
            # The authors': Kaiming normal (fan_out) weights, default bias.
            nn.init.kaiming_normal_(
                branch[0].weight, mode='fan_out', nonlinearity='relu')

    def descriptor_maps(self, inputs: Union[Tensor, Sequence[Tensor]]
                        ) -> Tensor:
        """F_d of the backbone's last map.

        Args:
            inputs (Tensor | Sequence[Tensor]): The backbone's maps; the
                last one, (B, in_channels, H, W), is used.

        Returns:
            Tensor: (B, D, descriptor_channels, H, W).
        """
        feat = inputs if isinstance(inputs, Tensor) else inputs[-1]
        if feat.dim() != 4 or feat.size(1) != self.in_channels:
            raise ValueError(
                f'AttributeDescriptorNeck expects the backbone map (B, '
                f'{self.in_channels}, H, W) (model.neck.in_channels), got '
                f'{tuple(feat.shape)}')
        return torch.stack([conv(feat) for conv in self.descriptor_convs], 1)

    def attended_maps(self, descriptors: Tensor) -> Tensor:
        """G_d = SIEA_d(F_d).

        Args:
            descriptors (Tensor): (B, D, C, H, W).

        Returns:
            Tensor: (B, D, C, H, W).
        """
        return torch.stack([
            block(descriptors[:, d])
            for d, block in enumerate(self.siea_blocks)
        ], 1)

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, Optional[Tensor]]:
        descriptors = self.descriptor_maps(inputs)
        if self.training or self.siea_in_eval:
            return descriptors, self.attended_maps(descriptors)
        return descriptors, None

    @torch.no_grad()
    def attention_maps(self, inputs: Union[Tensor, Sequence[Tensor]],
                       after_siea: bool = True) -> Tensor:
        """Where each descriptor looks, as the dispersion loss sees it: the
        channel-wise maximum, softmax over positions.

        Args:
            inputs (Tensor | Sequence[Tensor]): The backbone's maps.
            after_siea (bool): Read the SIEA outputs G_d (what ADL spreads
                apart; SIEA runs here even in eval mode) or, if False, the
                descriptor maps F_d that the codes pool.

        Returns:
            Tensor: (B, D, H, W), non-negative, each map summing to 1.
        """
        maps = self.descriptor_maps(inputs)
        if after_siea:
            maps = self.attended_maps(maps)
        batch, num, _, height, width = maps.shape
        return position_distributions(maps).view(batch, num, height, width)
