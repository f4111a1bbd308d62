"""QueryOpt's subtle feature extractor: two backbone stages to one token set."""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import EncoderLayer


@MODELS.register_module()
class SubtleFeatureNeck(BaseModule):
    """Top-down fusion of two stages, projection to tokens, transformer encoder.

    With C3, C4 the last two backbone outputs (C4 at half C3's resolution):
    ``P3 = lateral(C3) + top_down(C4)``; P3 and the unfused C4 are each
    projected to ``embed_dims`` by a 1x1 conv, flattened and concatenated
    (P3 tokens first), given learned row/column position embeddings, and
    passed through post-norm encoder layers.

    Args:
        in_channels (Sequence[int]): Channels of (C3, C4). Defaults to
            ResNet-50's (1024, 2048).
        embed_dims (int): Token width d. Defaults to 384.
        top_down_channels (int): Width inside the top-down path. Defaults to
            256.
        num_heads (int): Encoder attention heads. Defaults to 8.
        ffn_dims (int): Encoder FFN hidden width. Defaults to 2048.
        num_layers (int): Encoder layers. Defaults to 1.
        num_pos_embeds (int): Entries of each row/column table; must exceed
            the largest ``offset + side``. Defaults to 50.
        dropout (float): Encoder dropout. Defaults to 0.
        init_cfg (dict, optional): MMEngine init config.

    Returns (forward):
        tuple[Tensor, Tensor]: tokens and their position embedding, each
        (B, H3*W3 + H4*W4, embed_dims).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (1024, 2048),
                 embed_dims: int = 384,
                 top_down_channels: int = 256,
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
        c3, c4 = in_channels
        self.lateral = nn.Conv2d(c3, c3, 1)
        # No activation between the first layers: this is the authors' path.
        self.top_down = nn.Sequential(
            nn.Conv2d(c4, top_down_channels, 1),
            nn.BatchNorm2d(top_down_channels),
            nn.ConvTranspose2d(top_down_channels, top_down_channels, 4, 2, 1),
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

    def init_weights(self) -> None:
        """Authors' init: Kaiming (fan_out) convs in the fusion path, uniform
        position tables, Xavier for every matrix of the encoder."""
        super().init_weights()
        if self.init_cfg is not None:
            return
        for module in [self.lateral, *self.top_down]:
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(
                    module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(module.bias)
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

        Returns:
            Tensor: (height * width, embed_dims), row-major like ``flatten``.
        """
        if offset + max(height, width) > self.row_embed.num_embeddings:
            raise ValueError(
                f'feature map {height}x{width} at offset {offset} needs '
                f'num_pos_embeds >= {offset + max(height, width)}, have '
                f'{self.row_embed.num_embeddings}')
        device = self.row_embed.weight.device
        cols = self.col_embed(torch.arange(width, device=device) + offset)
        rows = self.row_embed(torch.arange(height, device=device) + offset)
        return torch.cat([
            cols.unsqueeze(0).expand(height, -1, -1),
            rows.unsqueeze(1).expand(-1, width, -1)
        ], dim=-1).flatten(0, 1)

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, Tensor]:
        """Args: inputs (tuple[Tensor]): backbone outputs; the last two are
        (C3, C4) with shapes (B, c3, H, W) and (B, c4, H/2, W/2)."""
        c3, c4 = inputs[-2:]
        p3 = self.lateral(c3) + self.top_down(c4)
        tokens, pos = [], []
        offset = 0
        for level, feat in enumerate((p3, c4)):
            height, width = feat.shape[-2:]
            tokens.append(self.input_projs[level](feat).flatten(2))
            pos.append(self.position_embedding(height, width, offset))
            # The second level's rows and columns both continue after the
            # first level's width: the authors' indexing.
            offset += width
        tokens = torch.cat(tokens, dim=-1).transpose(1, 2)
        pos = torch.cat(pos, dim=0).unsqueeze(0).expand(tokens.size(0), -1,
                                                        -1)
        for layer in self.encoder_layers:
            tokens = layer(tokens, pos)
        return tokens, pos
