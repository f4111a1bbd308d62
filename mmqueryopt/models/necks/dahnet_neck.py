"""DAHNet's neck: a global layer4 copy, and three part maps boosted step by
step, moved to layer4's resolution, mixed with each other and refined by a
shared layer4 copy with a channel fusion module."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones.resnet import (BasicBlock, Bottleneck,
                                                ResLayer)
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers.channel_fusion import ChannelFusion
from ..layers.cross_map_mixing import cross_map_mixing
from ..layers.enhance_suppress import EnhanceSuppress
from ..layers.map_distributions import maps_as_distributions
from ..layers.refiner_weights import reference_init, stage_weights
from .attribute_attention_neck import _last

_BLOCKS = dict(Bottleneck=Bottleneck, BasicBlock=BasicBlock)
# DAHNet's head splits the code between the global feature and 3 parts.
NUM_PARTS = 3
# The local refiner's channel fusion module sits after its first block.
_FUSION_INDEX = 1


@MODELS.register_module()
class DAHNetNeck(BaseModule):
    """DAHNet's global feature and three part features (Jiang et al.,
    ACM MM 2023), as aassxun/DSH_Analysis ``models/DAHNET.py`` (the same
    modules as WhiteJiang/DAHNet).

    With T (B, C, h, w) the backbone's last map (ResNet-50 layer3):

    1. ``g = GAP(global_refiner(T))``, a plain copy of the next stage.
    2. One :class:`EnhanceSuppress` (FESM) module called three times:
       ``boost1, sup1 = fesm(T); boost2, sup2 = fesm(sup1);
       boost3, _ = fesm(sup2)``.
    3. ``o_i = part_transition(boost_i)``, the stage's first block
       (stride 2, downsample), each part in its own call.
    4. :func:`cross_map_mixing` (MCM, no parameters) of o1, o2, o3.
    5. ``l_i = GAP(local_refiner(o_i'))``, one refiner shared by the parts
       (three calls): the stage's other blocks with a
       :class:`ChannelFusion` (CFM) after the first of them.

    Pretrained weights (a ``Pretrained`` ``init_cfg``, ``prefix='layer4.'``)
    go where the reference loads them: the whole stage into
    ``global_refiner``, block 0 into ``part_transition``, blocks 1 and 2
    into ``local_refiner``'s blocks around the CFM. FESM and CFM start
    Kaiming normal (fan_out) with BN 1/0, conv biases PyTorch's, as in the
    reference.

    In training each call normalises its own batch (the three parts
    separately, FESM's stripes separately), as the reference.

    Args:
        in_channels (int): Channels C of the backbone map. Defaults to 1024.
        out_channels (int): Channels of the refined maps. Defaults to 2048.
        refiner_block (str): ``'Bottleneck'`` or ``'BasicBlock'``.
        num_refiner_blocks (int): Blocks of the copied stage (>= 2): the
            global refiner has them all, the parts have the first one as
            their transition and the others around the CFM. Defaults to 3.
        refiner_stride (int): Stride of the stage's first block.
        fusion_ratio (int): CFM's MLP width ratio. Defaults to 3.
        fusion_reduction (int): CFM's coordinate attention width ratio.
        fusion_dropout (float): CFM's dropout. Defaults to 0.1.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=..., prefix='layer4.')``.

    Returns (forward):
        Tensor: (B, 4, out_channels): g, then l1, l2, l3.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 out_channels: int = 2048,
                 refiner_block: str = 'Bottleneck',
                 num_refiner_blocks: int = 3,
                 refiner_stride: int = 2,
                 fusion_ratio: int = 3,
                 fusion_reduction: int = 4,
                 fusion_dropout: float = 0.1,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if refiner_block not in _BLOCKS:
            raise ValueError(f'model.neck.refiner_block must be one of '
                             f'{list(_BLOCKS)}, got {refiner_block!r}')
        if num_refiner_blocks < 2:
            raise ValueError(
                f'model.neck.num_refiner_blocks must be >= 2 (a transition '
                f'block and a local block), got {num_refiner_blocks}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        block = _BLOCKS[refiner_block]
        self.global_refiner = ResLayer(block, num_refiner_blocks, in_channels,
                                       out_channels, stride=refiner_stride)
        self.enhance_suppress = EnhanceSuppress(in_channels)
        self.part_transition = ResLayer(block, 1, in_channels, out_channels,
                                        stride=refiner_stride)
        local = list(ResLayer(block, num_refiner_blocks - 1, out_channels,
                              out_channels))
        local.insert(
            _FUSION_INDEX,
            ChannelFusion(out_channels, fusion_ratio, fusion_reduction,
                          fusion_dropout))
        self.local_refiner = nn.Sequential(*local)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def init_weights(self) -> None:
        """The reference's init; then a ``Pretrained`` init_cfg loads the
        stage's blocks where the reference puts them."""
        reference_init(self)
        stage = stage_weights(self.init_cfg)
        if stage is not None:
            self._load_stage(stage)

    def pretrained_positions(self) -> Dict[str, Dict[int, int]]:
        """Which checkpoint block each copy's module loads:
        ``{module name: {checkpoint block: module index}}``."""
        num_blocks = len(self.global_refiner)
        local = [i for i in range(len(self.local_refiner))
                 if i != _FUSION_INDEX]
        return dict(
            global_refiner={j: j for j in range(num_blocks)},
            part_transition={0: 0},
            local_refiner=dict(zip(range(1, num_blocks), local)))

    def _load_stage(self, stage: Dict[str, Tensor]) -> None:
        """Load a ResNet stage (keys without the prefix) into the copies."""
        for name, positions in self.pretrained_positions().items():
            weights = {}
            for key, value in stage.items():
                block, _, rest = key.partition('.')
                if block.isdigit() and int(block) in positions:
                    weights[f'{positions[int(block)]}.{rest}'] = value
            module = getattr(self, name)
            expected = {
                key for key in module.state_dict()
                if int(key.split('.')[0]) in positions.values()
            }
            missing = sorted(expected - set(weights))
            if missing:
                raise ValueError(
                    f'model.neck.init_cfg: the checkpoint lacks the ResNet '
                    f'blocks the {name} loads (e.g. {missing[:3]}, of '
                    f'checkpoint blocks {sorted(positions)} under the '
                    f'prefix); DAHNet copies a ResNet stage: point prefix '
                    f'at it')
            module.load_state_dict(weights, strict=False)

    def part_maps(self, feat: Tensor) -> List[Tensor]:
        """The three boosted maps at the refined resolution, mixed.

        Args:
            feat (Tensor): (B, C, h, w) backbone map.

        Returns:
            list[Tensor]: 3 maps (B, out_channels, h', w').
        """
        boosts, current = [], feat
        for _ in range(NUM_PARTS):
            boost, current = self.enhance_suppress(current)
            boosts.append(boost)
        return cross_map_mixing([self.part_transition(b) for b in boosts])

    def attention_maps(self, feats: Union[Tensor, Sequence[Tensor]]
                       ) -> Tensor:
        """FESM's weight maps of the three calls, each normalised to sum
        to 1 over the positions.

        Returns:
            Tensor: (B, 3, h, w) at the backbone map's resolution.
        """
        maps, current = [], _last(feats)
        for _ in range(NUM_PARTS):
            maps.append(self.enhance_suppress.weight_map(current))
            current = self.enhance_suppress(current)[1]
        return maps_as_distributions(torch.cat(maps, dim=1))

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
                f'DAHNetNeck expects {self.in_channels}-channel maps '
                f'(model.neck.in_channels), got {tuple(feat.shape)}')
        features = [self.pool(self.global_refiner(feat)).flatten(1)]
        for part in self.part_maps(feat):
            features.append(self.pool(self.local_refiner(part)).flatten(1))
        return torch.stack(features, dim=1)
