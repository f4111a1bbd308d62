"""A2-Net's attention neck: one attention map per bit over the backbone's
last map, a shared "local" copy of the next ResNet stage over every attended
map, a "global" copy over the plain map, concatenated pooled features."""
import os
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones.resnet import (BasicBlock, Bottleneck,
                                                ResLayer)
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers.map_distributions import maps_as_distributions
from ..layers.refiner_weights import reference_init, stage_weights

_BLOCKS = dict(Bottleneck=Bottleneck, BasicBlock=BasicBlock)


def attention_tower(in_channels: int, num_attentions: int,
                    reduction: int = 4) -> nn.Sequential:
    """The stride-1 tower of A2-Net's reference code, shrinking the width
    by ``reduction`` twice before a 1x1 conv to one map per attention.

    Layout (in = 1024 for ResNet-50): bottleneck(in -> in), 1x1 conv + BN to
    in/4, bottleneck(in/4), 1x1 conv + BN to in/16, bottleneck(in/16), 1x1
    conv + BN + ReLU to ``num_attentions`` non-negative maps.

    Args:
        in_channels (int): Channels C of the backbone map.
        num_attentions (int): Maps M.
        reduction (int): Width ratio between the tower's stages.

    Returns:
        nn.Sequential: (B, C, h, w) -> (B, M, h, w).
    """
    widths = [in_channels // reduction**i for i in range(3)]
    if widths[-1] < reduction:
        raise ValueError(
            f'the attention tower needs in_channels >= {reduction**3} '
            f'(its last bottleneck is in_channels / {reduction**2} wide with '
            f'a {reduction}x narrower middle), got {in_channels}')
    layers = [Bottleneck(widths[0], widths[0], expansion=reduction)]
    for wide, narrow in zip(widths[:-1], widths[1:]):
        layers.append(
            nn.Sequential(
                nn.Conv2d(wide, narrow, 1, bias=False),
                nn.BatchNorm2d(narrow)))
        layers.append(Bottleneck(narrow, narrow, expansion=reduction))
    layers.append(
        nn.Sequential(
            nn.Conv2d(widths[-1], num_attentions, 1, bias=False),
            nn.BatchNorm2d(num_attentions), nn.ReLU(inplace=True)))
    return nn.Sequential(*layers)


@MODELS.register_module()
class AttributeAttentionNeck(BaseModule):
    """A2-Net's attribute-aware feature: ``M`` attended copies of the
    backbone map and the plain map, each refined by a copy of the next
    ResNet stage and average-pooled.

    With T (B, C, h, w) the backbone's last map and A (B, M, h, w) the
    attention tower's output, map ``c`` is ``A[:, c] * T``; the M products
    are folded into the batch (B*M, C, h, w) and run through one shared
    ``local_refiner``; T runs through an independent ``global_refiner``.
    Both refiners are copies of the backbone's next stage (ResNet-50's
    layer4: 3 bottlenecks, first stride 2, to 2048 channels) and, with a
    ``Pretrained`` ``init_cfg``, both load the checkpoint's keys under
    ``init_cfg['prefix']`` (``'layer4.'``). The tower starts random
    (Kaiming normal, fan_out), as in the reference code.

    Memory: in training the local path keeps about
    :meth:`local_activation_bytes` for the backward pass, B*M times one
    layer4 pass; a forward that would exceed ``memory_limit`` (default:
    the free memory of the device) is refused before it starts.

    Args:
        num_attentions (int): Attention maps M; A2-Net sets M = code length.
        in_channels (int): Channels C of the backbone's last map. Defaults
            to 1024 (ResNet-50 layer3).
        out_channels (int): Channels of a refined map. Defaults to 2048.
        refiner_block (str): ``'Bottleneck'`` (ResNet-50) or
            ``'BasicBlock'`` (ResNet-18 style). Defaults to ``'Bottleneck'``.
        num_refiner_blocks (int): Blocks per refiner. Defaults to 3.
        refiner_stride (int): Stride of the refiners' first block.
        memory_limit (int, optional): Bytes the local path may keep for the
            backward pass; None uses the device's free memory.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=..., prefix='layer4.')`` loads both refiners.

    Returns (forward):
        Tensor: (B, (M + 1) * out_channels) holistic features, the M local
        vectors first (map order), the global one last.
    """

    def __init__(self,
                 num_attentions: int,
                 in_channels: int = 1024,
                 out_channels: int = 2048,
                 refiner_block: str = 'Bottleneck',
                 num_refiner_blocks: int = 3,
                 refiner_stride: int = 2,
                 memory_limit: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if (not isinstance(num_attentions, int)
                or isinstance(num_attentions, bool) or num_attentions < 1):
            raise ValueError(
                f'model.neck.num_attentions (one attention map per bit, = '
                f'the code length) must be a positive int, got '
                f'{num_attentions!r}')
        if refiner_block not in _BLOCKS:
            raise ValueError(f'refiner_block must be one of {list(_BLOCKS)}, '
                             f'got {refiner_block!r}')
        self.num_attentions = num_attentions
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.memory_limit = memory_limit
        self.attention_tower = attention_tower(in_channels, num_attentions)

        def refiner() -> nn.Sequential:
            return ResLayer(_BLOCKS[refiner_block], num_refiner_blocks,
                            in_channels, out_channels, stride=refiner_stride)

        self.local_refiner = refiner()
        self.global_refiner = refiner()
        self.pool = nn.AdaptiveAvgPool2d(1)

    @property
    def feat_dims(self) -> int:
        """Width of the holistic feature, (M + 1) * out_channels."""
        return (self.num_attentions + 1) * self.out_channels

    def init_weights(self) -> None:
        """Kaiming normal (fan_out) convs and BN 1/0 everywhere, as the
        reference; then a ``Pretrained`` init_cfg loads both refiners."""
        reference_init(self)
        weights = stage_weights(self.init_cfg)
        if weights is not None:
            self._load_refiners(weights)

    def _load_refiners(self, weights: Dict[str, Tensor]) -> None:
        """Load a ResNet stage's weights into both refiners."""
        for name in ('local_refiner', 'global_refiner'):
            result = getattr(self, name).load_state_dict(
                weights, strict=False)
            if result.missing_keys or result.unexpected_keys:
                raise ValueError(
                    f'model.neck.{name}: the checkpoint\'s stage weights do '
                    f'not fit: missing {result.missing_keys[:3]}, '
                    f'unexpected {result.unexpected_keys[:3]}')

    def local_activation_bytes(self, batch_size: int, height: int,
                               width: int) -> int:
        """Bytes the local path keeps for the backward pass (float32).

        Counts the tensors autograd saves in each refiner block (block input,
        conv and BN outputs at their resolutions) for all B*M attended maps.

        Args:
            batch_size (int): Images B.
            height (int): Rows of the backbone map.
            width (int): Columns of the backbone map.

        Returns:
            int: Estimated bytes.
        """
        elements = 0
        size = height * width
        for block in self.local_refiner:
            is_bottleneck = isinstance(block, Bottleneck)
            mid = block.mid_channels
            out_size = size // (block.stride**2)
            elements += block.in_channels * size  # the block's input
            if is_bottleneck:
                # conv1 and its BN/ReLU at the input resolution, then conv2
                # and conv3 at the output's.
                elements += 2 * mid * size + 2 * mid * out_size
            else:
                elements += 2 * mid * out_size
            elements += 2 * block.out_channels * out_size
            if block.downsample is not None:
                elements += block.out_channels * out_size
            size = out_size
        return elements * 4 * batch_size * self.num_attentions

    def _check_memory(self, feat: Tensor) -> None:
        batch, _, height, width = feat.shape
        needed = self.local_activation_bytes(batch, height, width)
        limit = (self.memory_limit if self.memory_limit is not None else
                 _free_memory(feat.device))
        if limit is not None and needed > limit:
            raise RuntimeError(
                f'A2-Net local path: {batch} images x {self.num_attentions} '
                f'attention maps = {batch * self.num_attentions} passes of '
                f'the {self.in_channels}x{height}x{width} map through the '
                f'refiner need about {needed / 2**30:.2f} GiB of activations '
                f'for the backward pass, more than the {limit / 2**30:.2f} '
                f'GiB available on {feat.device}: lower the batch size, the '
                f'code length (model.neck.num_attentions) or the input size')

    def attend(self, feat: Tensor) -> Tensor:
        """Raw attention maps.

        Args:
            feat (Tensor): (B, C, h, w) backbone map.

        Returns:
            Tensor: (B, M, h, w), non-negative, not normalised.
        """
        return self.attention_tower(feat)

    def attention_maps(self, feats: Union[Tensor, Sequence[Tensor]]
                       ) -> Tensor:
        """Per-bit attention maps normalised over positions.

        Args:
            feats (Tensor | tuple[Tensor]): What forward takes; the last map
                is used.

        Returns:
            Tensor: (B, M, h, w), non-negative, each map summing to 1. A map
            the ReLU zeroed everywhere is returned uniform.
        """
        return maps_as_distributions(self.attend(_last(feats)))

    def local_maps(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """The local refiner's maps of the M attended copies of the
        backbone map.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C, h, w), or the backbone's
                tuple of maps whose last one is that.

        Returns:
            Tensor: (B, M, out_channels, h', w').
        """
        feat = _last(feats)
        if feat.size(1) != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects {self.in_channels}-channel '
                f'maps (model.neck.in_channels), got {tuple(feat.shape)}')
        if self.training and torch.is_grad_enabled():
            self._check_memory(feat)
        batch, channels, height, width = feat.shape
        # (B, M, 1, h, w) * (B, 1, C, h, w), folded into the batch so that
        # one shared refiner sees all B*M attended maps at once.
        attended = (self.attend(feat).unsqueeze(2) *
                    feat.unsqueeze(1)).reshape(batch * self.num_attentions,
                                               channels, height, width)
        maps = self.local_refiner(attended)
        return maps.reshape(batch, self.num_attentions, *maps.shape[1:])

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Holistic feature of every image.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C, h, w), or the backbone's
                tuple of maps whose last one is that.

        Returns:
            Tensor: (B, (M + 1) * out_channels).
        """
        maps = self.local_maps(feats)
        local = self.pool(maps.flatten(0, 1)).reshape(maps.size(0), -1)
        global_ = self.pool(self.global_refiner(_last(feats))).flatten(1)
        return torch.cat([local, global_], dim=1)


def _last(feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    return feats if isinstance(feats, Tensor) else feats[-1]


def _free_memory(device: torch.device) -> Optional[int]:
    """Free bytes on ``device``; None when unknown."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    if device.type != 'cpu':
        return None
    try:  # Linux: free plus reclaimable page cache
        with open('/proc/meminfo') as meminfo:
            for line in meminfo:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
        return None
