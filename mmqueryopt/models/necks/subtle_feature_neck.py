"""QueryOpt's subtle feature extractor: two backbone stages to one token set."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import EncoderLayer, backbone_map_shapes


class LevelTokens(tuple):
    """The neck's output, ``(tokens, pos)``, a plain 2-tuple to every
    caller, that also says where the tokens lie: ``level_shapes``, the
    (h, w) of each level's grid in token order (row-major within a level).

    ``QueryHashHead.attention_maps`` reads it to put the decoder's attention
    back on the image grid; unpacking and indexing are a tuple's.
    """

    def __new__(cls, tokens: Tensor, pos: Tensor,
                level_shapes: Sequence[Tuple[int, int]] = ()):
        pair = super().__new__(cls, (tokens, pos))
        pair.level_shapes = tuple(tuple(shape) for shape in level_shapes)
        return pair

    def __reduce__(self):
        return type(self), (*self, self.level_shapes)


@MODELS.register_module()
class SubtleFeatureNeck(BaseModule):
    """Top-down fusion of two maps, projection to tokens, transformer encoder.

    With C3, C4 the last two backbone maps: ``P3 = lateral(C3) +
    top_down(C4)``; P3 and the unfused C4 are each projected to
    ``embed_dims`` by a 1x1 conv, flattened and concatenated (P3 tokens
    first), given learned row/column position embeddings, and passed through
    post-norm encoder layers. Two resolution ratios are fused, told from the
    backbone's maps unless ``upsample_factor`` names one:

    - ``upsample_factor=2`` (CNNs and hierarchical transformers: ResNet,
      ConvNeXt, Swin...; C4 at half C3's resolution): the authors' path,
      1x1 conv, BN, 4x4 transposed conv of stride 2, BN, 1x1 conv, BN, ReLU.
    - ``upsample_factor=1`` (plain ViTs with ``out_type='featmap'``: both
      chosen layers at one resolution): the same path with a 3x3 conv of
      stride 1 in the transposed conv's place, so that it keeps its spatial
      mixing but does not upsample. P3 and C4 then cover the same grid; they
      stay two token sets (2 * H * W tokens), told apart by their position
      entries, since the second level's rows and columns start after the
      first level's width as in the authors' indexing.

    Args:
        in_channels (Sequence[int]): Channels of (C3, C4). Defaults to
            ResNet-50's (1024, 2048).
        embed_dims (int): Token width d. Defaults to 384.
        top_down_channels (int): Width inside the top-down path. Defaults to
            256.
        upsample_factor (int, optional): C3's resolution over C4's, 2 or 1.
            None: :class:`HashRetriever` tells it from its backbone's maps
            (:meth:`fit_to_backbone`), so that swapping the backbone is one
            key; a neck built alone takes 2 then. Defaults to None.
        num_heads (int): Encoder attention heads. Defaults to 8.
        ffn_dims (int): Encoder FFN hidden width. Defaults to 2048.
        num_layers (int): Encoder layers. Defaults to 1.
        num_pos_embeds (int): Entries of each row/column table; must reach
            C3's width plus C4's larger side (ResNet-50: 14 + 7 at 224,
            28 + 14 at 448; ViT-B/16: 14 + 14 at 224). Defaults to 50.
        dropout (float): Encoder dropout. Defaults to 0.
        init_cfg (dict, optional): MMEngine init config.

    Returns (forward):
        tuple[Tensor, Tensor]: tokens and their position embedding, each
        (B, H3*W3 + H4*W4, embed_dims), as :class:`LevelTokens`, whose
        ``level_shapes`` are ((H3, W3), (H4, W4)).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (1024, 2048),
                 embed_dims: int = 384,
                 top_down_channels: int = 256,
                 upsample_factor: Optional[int] = None,
                 num_heads: int = 8,
                 ffn_dims: int = 2048,
                 num_layers: int = 1,
                 num_pos_embeds: int = 50,
                 dropout: float = 0.0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 2:
            raise ValueError(
                f'SubtleFeatureNeck fuses exactly two stages, got '
                f'in_channels={tuple(in_channels)}')
        if embed_dims % 2:
            raise ValueError(f'embed_dims must be even (half rows, half '
                             f'columns), got {embed_dims}')
        if upsample_factor is None:
            upsample_factor = 2
        if upsample_factor not in (1, 2):
            raise ValueError(
                f'model.neck.upsample_factor must be 2 (second map at half '
                f'the first one\'s resolution) or 1 (same resolution), got '
                f'{upsample_factor!r}')
        self.in_channels = tuple(in_channels)
        self.upsample_factor = upsample_factor
        c3, c4 = in_channels
        if upsample_factor == 2:
            spatial = nn.ConvTranspose2d(top_down_channels, top_down_channels,
                                         4, 2, 1)
        else:
            spatial = nn.Conv2d(top_down_channels, top_down_channels, 3, 1, 1)
        self.lateral = nn.Conv2d(c3, c3, 1)
        # No activation between the first layers: this is the authors' path.
        self.top_down = nn.Sequential(
            nn.Conv2d(c4, top_down_channels, 1),
            nn.BatchNorm2d(top_down_channels),
            spatial,
            nn.BatchNorm2d(top_down_channels),
            nn.Conv2d(top_down_channels, c3, 1),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True))
        self.input_projs = nn.ModuleList(
            [nn.Conv2d(c3, embed_dims, 1), nn.Conv2d(c4, embed_dims, 1)])
        self.row_embed = nn.Embedding(num_pos_embeds, embed_dims // 2)
        self.col_embed = nn.Embedding(num_pos_embeds, embed_dims // 2)
        self.encoder_layers = nn.ModuleList([
            EncoderLayer(embed_dims, num_heads, ffn_dims, dropout)
            for _ in range(num_layers)
        ])

    @classmethod
    def fit_to_backbone(cls, cfg: dict, backbone: nn.Module) -> dict:
        """The neck's config with ``upsample_factor`` told by the backbone.

        Called by :class:`HashRetriever` before it builds the neck. The
        factor is C3's side over C4's for a 224x224 image (the backbone runs
        on the meta device: shapes only); a factor given in ``cfg`` is kept,
        and checked against the maps at every forward.

        Args:
            cfg (dict): This neck's config (``model.neck``).
            backbone (nn.Module): The built backbone.

        Returns:
            dict: ``cfg`` with ``upsample_factor`` set.

        Raises:
            ValueError: The backbone's last two maps are not at one or at
                two resolutions a factor 2 apart.
        """
        if cfg.get('upsample_factor') is not None:
            return cfg
        shapes = backbone_map_shapes(backbone)
        if len(shapes) < 2 or any(len(shape) != 4 for shape in shapes[-2:]):
            return cfg  # the first forward names the key to change
        (*_, h3, w3), (*_, h4, w4) = shapes[-2:]
        for factor in (1, 2):
            if (h3, w3) == (h4 * factor, w4 * factor):
                return dict(cfg, upsample_factor=factor)
        raise ValueError(
            f'SubtleFeatureNeck fuses a second map at half the first one\'s '
            f'resolution or at the same one; for a 224x224 image the '
            f'backbone gives {shapes[-2]} and {shapes[-1]}: choose other '
            f'model.backbone.out_indices')

    def init_weights(self) -> None:
        """Authors' init: Kaiming (fan_out) weights of the fusion path's convs
        (their biases keep PyTorch's default), uniform position tables,
        Xavier for every matrix of the encoder."""
        super().init_weights()
        if self.init_cfg is not None:
            return
        for module in [self.lateral, *self.top_down]:
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                # Biases keep PyTorch's default init, as the authors'.
                nn.init.kaiming_normal_(
                    module.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)
        for param in self.encoder_layers.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def position_embedding(self, height: int, width: int,
                           offset: int) -> Tensor:
        """Row/column embedding of one level, column half first.

        Args:
            height (int): Map height.
            width (int): Map width.
            offset (int): First row and column index of this level.

        Returns:
            Tensor: (height * width, embed_dims), row-major like ``flatten``.
        """
        needed = offset + max(height, width)
        if needed > self.row_embed.num_embeddings:
            # An Embedding lookup past the table would be an index error
            # deep inside the forward pass; say which key to raise instead.
            raise ValueError(
                f'feature map {height}x{width} at position offset {offset} '
                f'needs model.neck.num_pos_embeds >= {needed}, the tables '
                f'have {self.row_embed.num_embeddings}: raise it (the '
                f'tables are then new parameters) or use a smaller input')
        device = self.row_embed.weight.device
        cols = self.col_embed(torch.arange(width, device=device) + offset)
        rows = self.row_embed(torch.arange(height, device=device) + offset)
        return torch.cat([
            cols.unsqueeze(0).expand(height, -1, -1),
            rows.unsqueeze(1).expand(-1, width, -1)
        ], dim=-1).flatten(0, 1)

    def check_inputs(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """The last two maps, after checking them against the config.

        A backbone/neck mismatch otherwise surfaces as a shape error inside
        a convolution or attention; these errors name the key to change.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs.

        Returns:
            tuple[Tensor, Tensor]: C3 (B, c3, H, W) and C4 (B, c4, H / f,
            W / f), f = ``upsample_factor``.
        """
        if not isinstance(inputs, (tuple, list)) or len(inputs) < 2:
            count = len(inputs) if isinstance(inputs, (tuple, list)) else 1
            raise ValueError(
                f'SubtleFeatureNeck fuses the last two backbone maps, the '
                f'backbone gave {count}: set model.backbone.out_indices to '
                f'two stages (e.g. (2, 3) for ResNet, ConvNeXt, Swin)')
        c3, c4 = inputs[-2:]
        shapes = f'{tuple(c3.shape)} and {tuple(c4.shape)}'
        if c3.dim() != 4 or c4.dim() != 4:
            raise ValueError(
                f'SubtleFeatureNeck needs (B, C, H, W) maps, the backbone '
                f'gave {shapes}: for a ViT set '
                f"model.backbone.out_type='featmap'")
        channels = (c3.size(1), c4.size(1))
        if channels != self.in_channels:
            raise ValueError(
                f'backbone maps {shapes} have channels {channels}, but '
                f'model.neck.in_channels={self.in_channels}: set it to '
                f'{channels}')
        factor = self.upsample_factor
        if (c3.size(2), c3.size(3)) != (c4.size(2) * factor,
                                        c4.size(3) * factor):
            ratio = 'half ' if factor == 2 else ''
            raise ValueError(
                f'model.neck.upsample_factor={factor} fuses a second map at '
                f"{ratio}the first one's resolution; the backbone gave "
                f'{shapes}. Use upsample_factor=2 for maps at strides s and '
                f'2s (and an input size those strides divide), 1 for maps '
                f'at one stride (ViT), or choose other '
                f'model.backbone.out_indices')
        return c3, c4

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Fuse, embed and encode the last two backbone maps.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs; the last two are
                (C3, C4) with shapes (B, c3, H, W) and (B, c4, H / f, W / f),
                f = ``upsample_factor``.

        Returns:
            LevelTokens: tokens and their position embedding, each
            (B, H*W + H*W / f^2, embed_dims), a tuple with ``level_shapes``
            ((H, W), (H / f, W / f)).
        """
        c3, c4 = self.check_inputs(inputs)
        p3 = self.lateral(c3) + self.top_down(c4)
        tokens, pos, shapes = [], [], []
        offset = 0
        for level, feat in enumerate((p3, c4)):
            height, width = feat.shape[-2:]
            shapes.append((int(height), int(width)))
            pos.append(self.position_embedding(height, width, offset))
            tokens.append(self.input_projs[level](feat).flatten(2))
            # The second level's rows and columns both continue after the
            # first level's width: the authors' indexing.
            offset += width
        tokens = torch.cat(tokens, dim=-1).transpose(1, 2)
        pos = torch.cat(pos, dim=0).unsqueeze(0).expand(tokens.size(0), -1,
                                                        -1)
        for layer in self.encoder_layers:
            tokens = layer(tokens, pos)
        return LevelTokens(tokens, pos, shapes)
