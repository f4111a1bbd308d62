"""SEMICON's neck: three part maps found step by step with
suppression-enhancing masks, and layer4 copies with channel transformers
that refine the global map and each attended map."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones.resnet import (BasicBlock, Bottleneck,
                                                ResLayer)
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers.channel_transformer import ChannelTransformer
from ..layers.map_distributions import maps_as_distributions
from ..layers.refiner_weights import reference_init, stage_weights
from .attribute_attention_neck import _last, attention_tower

_BLOCKS = dict(Bottleneck=Bottleneck, BasicBlock=BasicBlock)
# SEMICON attends to three parts; its head splits the code to match.
NUM_PARTS = 3
MASK_STATISTICS = ('batch', 'image')


def refiner_with_channel_transformers(block: str, num_blocks: int,
                                      in_channels: int, out_channels: int,
                                      stride: int,
                                      num_heads: Optional[int] = None
                                      ) -> nn.Sequential:
    """A ResNet stage with a :class:`ChannelTransformer` after every block
    but the first: for ResNet-50's layer4, [Bottleneck (stride 2),
    Bottleneck, CT, Bottleneck, CT], SEMICON's layout.

    Returns:
        nn.Sequential: (B, in_channels, h, w) ->
        (B, out_channels, h / stride, w / stride).
    """
    blocks = list(ResLayer(_BLOCKS[block], num_blocks, in_channels,
                           out_channels, stride=stride))
    layers = blocks[:1]
    for resnet_block in blocks[1:]:
        layers += [resnet_block, ChannelTransformer(out_channels, num_heads)]
    return nn.Sequential(*layers)


@MODELS.register_module()
class SuppressionEnhancingNeck(BaseModule):
    """SEMICON's global feature and three part features.

    With T (B, C, h, w) the backbone's last map: the A2-Net/ExchNet
    attention tower without its last conv maps T to X (B, C/16, h, w); three
    1x1 conv + BN + ReLU heads then find the parts one after another, each
    on X with the parts found so far suppressed:
    ``f1 = head1(X); X <- X * (2 - mask(f1)); f2 = head2(X);
    X <- X * (2 - mask(f2)); f3 = head3(X)``. ``mask`` (no gradient) is the
    softmax of a map over its h x w positions, standardised as
    ``(a - mean) / std ** mask_exponent + 1`` and clipped to [0, 2] (where
    std is 0 the reference gives NaN; the mask is 1 here).

    ``mask_statistics='batch'`` (the reference) takes mean and std over the
    whole batch's softmaxed maps, so an image's codes depend on the other
    images of its batch, in evaluation too; ``'image'`` takes them over
    each image's own h x w values, so that a served model gives an image
    the same code whatever its batch-mates.

    The global feature is ``global_refiner(T)`` average-pooled; part i's is
    ``local_refiner(f_i * T)`` pooled, the three parts in three separate
    calls (in training, BatchNorm normalises each part's batch on its
    own, as in the reference). The refiners are copies of the next ResNet
    stage with channel transformers (:func:`refiner_with_channel_transformers`).

    Pretrained weights (a ``Pretrained`` ``init_cfg`` with
    ``prefix='layer4.'``): the reference loads ResNet-50's layer4 into its
    5-module refiners with ``strict=False`` by index, so layer4.0 and
    layer4.1 land on the first two bottlenecks and layer4.2 finds a channel
    transformer at index 2 and is dropped: the third bottleneck (index 3)
    and the channel transformers start random. ``load_third_block=True``
    also loads layer4.2 into the third bottleneck (not the reference).
    Everything else starts Kaiming normal (fan_out) with BN 1/0, as in the
    reference; the channel transformers' conv biases keep PyTorch's init.

    Args:
        in_channels (int): Channels C of the backbone map. Defaults to 1024.
        out_channels (int): Channels of a refined map. Defaults to 2048.
        refiner_block (str): ``'Bottleneck'`` or ``'BasicBlock'``.
        num_refiner_blocks (int): ResNet blocks per refiner. Defaults to 3.
        refiner_stride (int): Stride of the refiners' first block.
        num_heads (int, optional): Channel transformer heads; None for the
            reference's ``max(out_channels // 64, 16)``.
        mask_statistics (str): ``'batch'`` or ``'image'`` (see above).
        mask_exponent (float): Power of the std in the mask: 0.15 in the
            code, 0.3 in the paper (the authors' README).
        load_third_block (bool): See above. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=..., prefix='layer4.')`` loads both refiners.

    Returns (forward):
        Tensor: (B, 4, out_channels): the global feature, then the three
        parts' in order.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 out_channels: int = 2048,
                 refiner_block: str = 'Bottleneck',
                 num_refiner_blocks: int = 3,
                 refiner_stride: int = 2,
                 num_heads: Optional[int] = None,
                 mask_statistics: str = 'batch',
                 mask_exponent: float = 0.15,
                 load_third_block: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if refiner_block not in _BLOCKS:
            raise ValueError(f'model.neck.refiner_block must be one of '
                             f'{list(_BLOCKS)}, got {refiner_block!r}')
        if mask_statistics not in MASK_STATISTICS:
            raise ValueError(
                f'model.neck.mask_statistics must be one of '
                f'{MASK_STATISTICS}, got {mask_statistics!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mask_statistics = mask_statistics
        self.mask_exponent = mask_exponent
        self.load_third_block = load_third_block
        # The A2-Net tower up to its last conv (SEMICON's "layer4").
        self.attention_tower = attention_tower(in_channels, 1)[:-1]
        width = in_channels // 16
        self.mask_heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(width, 1, 1, bias=False), nn.BatchNorm2d(1),
                nn.ReLU(inplace=True)) for _ in range(NUM_PARTS))

        def refiner() -> nn.Sequential:
            return refiner_with_channel_transformers(
                refiner_block, num_refiner_blocks, in_channels, out_channels,
                refiner_stride, num_heads)

        self.global_refiner = refiner()
        self.local_refiner = refiner()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def init_weights(self) -> None:
        """Kaiming normal (fan_out) conv weights and BN 1/0, as the
        reference; then a ``Pretrained`` init_cfg loads the refiners."""
        reference_init(self)
        weights = stage_weights(self.init_cfg)
        if weights is not None:
            self._load_refiners(weights)

    def pretrained_positions(self) -> dict:
        """Checkpoint block -> refiner index that the pretrained weights go
        to: {0: 0, 1: 1} as the reference, {0: 0, 1: 1, 2: 3} with
        ``load_third_block``."""
        resnet_blocks = [
            index for index, module in enumerate(self.global_refiner)
            if not isinstance(module, ChannelTransformer)
        ]
        if self.load_third_block:
            return dict(enumerate(resnet_blocks))
        # strict=False by index: checkpoint block j loads only where the
        # refiner's module j is a ResNet block too.
        return {j: j for j in range(len(resnet_blocks)) if j in resnet_blocks}

    def _load_refiners(self, stage: dict) -> None:
        """Load a ResNet stage's blocks (``stage``: keys without the
        prefix) into both refiners at :meth:`pretrained_positions`."""
        positions = self.pretrained_positions()
        weights = {}
        for key, value in stage.items():
            block, _, rest = key.partition('.')
            if block.isdigit() and int(block) in positions:
                weights[f'{positions[int(block)]}.{rest}'] = value
        for name in ('global_refiner', 'local_refiner'):
            refiner = getattr(self, name)
            expected = {
                key for key in refiner.state_dict()
                if int(key.split('.')[0]) in positions.values()
            }
            missing = sorted(expected - set(weights))
            if missing:
                raise ValueError(
                    f'model.neck.init_cfg: the checkpoint lacks the ResNet '
                    f'blocks the {name} loads (e.g. {missing[:3]}, of '
                    f'checkpoint blocks {sorted(positions)} under the '
                    f'prefix); the refiners copy a ResNet stage: point '
                    f'prefix at it')
            refiner.load_state_dict(weights, strict=False)

    def mask(self, part_map: Tensor) -> Tensor:
        """The suppression-enhancing mask of a part map, without gradient.

        Args:
            part_map (Tensor): (B, 1, h, w).

        Returns:
            Tensor: (B, 1, h, w) in [0, 2].
        """
        with torch.no_grad():
            batch, _, height, width = part_map.shape
            probs = part_map.reshape(batch, -1).softmax(dim=1)
            if self.mask_statistics == 'batch':
                std, mean = torch.std_mean(probs)
            else:
                std, mean = torch.std_mean(probs, dim=1, keepdim=True)
            # A map constant over its statistics' extent (e.g. zeroed
            # everywhere by the ReLU) has std 0: the reference divides 0 by
            # 0 (NaN codes); its limit, a mask of 1 (no suppression), here.
            std = std.clamp_min(torch.finfo(std.dtype).tiny)
            scaled = (probs - mean) / std**self.mask_exponent + 1
            return scaled.reshape(batch, 1, height, width).clamp(0, 2)

    def part_maps(self, feat: Tensor) -> Tensor:
        """The three part maps, found step by step.

        Args:
            feat (Tensor): (B, C, h, w) backbone map.

        Returns:
            Tensor: (B, 3, h, w), non-negative.
        """
        x = self.attention_tower(feat)
        maps = []
        for step, head in enumerate(self.mask_heads):
            maps.append(head(x))
            if step < NUM_PARTS - 1:
                x = x * (2 - self.mask(maps[-1]))
        return torch.cat(maps, dim=1)

    def attention_maps(self, feats: Union[Tensor, Sequence[Tensor]]
                       ) -> Tensor:
        """The part maps normalised over positions.

        Returns:
            Tensor: (B, 3, h, w), each map summing to 1; a map the ReLU
            zeroed everywhere is returned uniform.
        """
        return maps_as_distributions(self.part_maps(_last(feats)))

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Global and part features.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C, h, w), or the backbone's
                tuple of maps whose last one is that.

        Returns:
            Tensor: (B, 4, out_channels).
        """
        feat = _last(feats)
        if feat.size(1) != self.in_channels:
            raise ValueError(
                f'SuppressionEnhancingNeck expects {self.in_channels}-channel '
                f'maps (model.neck.in_channels), got {tuple(feat.shape)}')
        maps = self.part_maps(feat)
        features = [self.pool(self.global_refiner(feat)).flatten(1)]
        for part in range(NUM_PARTS):
            attended = maps[:, part:part + 1] * feat
            features.append(self.pool(self.local_refiner(attended)).flatten(1))
        return torch.stack(features, dim=1)

