"""QueryOpt's hash head: one learnable query per bit, decoded by
cross-attention, plus parameter-free auxiliary branches in training."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import CrossAttentionDecoderLayer
from .base_hash_head import BaseHashHead


@MODELS.register_module()
class QueryHashHead(BaseHashHead):
    """Decode ``code_length`` learnable queries into one relaxed bit each.

    In training the queries are decoded ``relaxed_dims // code_length`` times:
    branch ``i`` rolls every query by ``i * embed_dims / num_branches``
    features, which adds branches (and relaxed bits) without parameters.
    At inference only branch 0, the original queries, is decoded.

    Args:
        code_length (int): Bits k of the binary code.
        relaxed_dims (int): Relaxed bits L produced in training, k times the
            number of branches. Must be a multiple of ``code_length``.
            Defaults to 96, the LCM of 12, 24, 32 and 48.
        embed_dims (int): Query and token width d. Defaults to 384.
        num_heads (int): Cross-attention heads. Defaults to 8.
        ffn_dims (int): Decoder FFN hidden width. Defaults to 2048.
        dropout (float): Decoder dropout. Defaults to 0.
        init_cfg (dict, optional): MMEngine init config.
    """

    # One row per bit: the retriever reads a checkpoint's code length here.
    code_length_param = 'query_embed.weight'

    def __init__(self,
                 code_length: int,
                 relaxed_dims: int = 96,
                 embed_dims: int = 384,
                 num_heads: int = 8,
                 ffn_dims: int = 2048,
                 dropout: float = 0.0,
                 init_cfg=None):
        super().__init__(code_length, relaxed_dims, init_cfg=init_cfg)
        if code_length > relaxed_dims or relaxed_dims % code_length:
            raise ValueError(
                f'code_length={code_length} must divide relaxed_dims='
                f'{relaxed_dims} (the auxiliary branches are whole copies of '
                f'the queries); choose a divisor of {relaxed_dims} or set '
                f'relaxed_dims to a multiple of {code_length}')
        self.num_branches = relaxed_dims // code_length
        if embed_dims % self.num_branches:
            raise ValueError(
                f'embed_dims={embed_dims} must be a multiple of the '
                f'{self.num_branches} branches so that each shift is whole')
        self.query_embed = nn.Embedding(code_length, embed_dims)
        self.decoder_layer = CrossAttentionDecoderLayer(
            embed_dims, num_heads, ffn_dims, dropout)
        self.decoder_norm = nn.LayerNorm(embed_dims)
        self.bit_proj = nn.Linear(embed_dims, 1, bias=False)

    def init_weights(self) -> None:
        """Xavier for the decoder's matrices, as the authors do."""
        super().init_weights()
        if self.init_cfg is None:
            for param in self.decoder_layer.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)

    def branch_queries(self) -> Tensor:
        """All branches' queries, branch-major.

        Returns:
            Tensor: (num_branches * code_length, embed_dims); rows
            ``i*k .. (i+1)*k - 1`` are branch ``i``.
        """
        queries = self.query_embed.weight
        step = queries.size(1) // self.num_branches
        return torch.cat([
            torch.roll(queries, shifts=i * step, dims=1)
            for i in range(self.num_branches)
        ])

    def forward(self, feats: Tuple[Tensor, Tensor]) -> Tensor:
        """Relaxed codes in (-1, 1).

        Args:
            feats (tuple[Tensor, Tensor]): neck tokens and position
                embedding, each (B, T, d).

        Returns:
            Tensor: (B, relaxed_dims) in training, (B, code_length) in eval.
        """
        queries = (self.branch_queries()
                   if self.training else self.query_embed.weight)
        decoded = F.normalize(self.attribute_features(feats, queries), dim=-1)
        return torch.tanh(self.bit_proj(decoded).squeeze(-1))

    def attribute_features(self,
                           feats: Tuple[Tensor, Tensor],
                           queries: Optional[Tensor] = None) -> Tensor:
        """The attribute-specific feature each query decodes from an image:
        the decoder's output after its final LayerNorm, whose L2-normalised
        projection is the query's relaxed bit (the paper's Figure 8).

        Args:
            feats (tuple[Tensor, Tensor]): neck tokens and position
                embedding, each (B, T, d).
            queries (Tensor, optional): (Q, d) queries to decode. Defaults
                to the original ones (branch 0, the binary code's).

        Returns:
            Tensor: (B, Q, d).
        """
        memory, memory_pos = feats
        if queries is None:
            queries = self.query_embed.weight
        query_pos = queries.unsqueeze(0).expand(memory.size(0), -1, -1)
        decoded = self.decoder_layer(
            torch.zeros_like(query_pos), query_pos, memory, memory_pos)
        return self.decoder_norm(decoded)

    def attention_maps(self, feats: Tuple[Tensor, Tensor]) -> Tensor:
        """Where each bit's query looks: the decoder's cross-attention of
        the original queries (branch 0, the ones that give the binary code)
        over the neck's tokens, on the finest token grid.

        The weights are averaged over heads. The tokens are those of
        ``SubtleFeatureNeck``: levels in order, each a row-major grid, the
        first the finest (P3, h x w). A coarser level's token (C4 at stride
        f = h / h4) covers f x f cells of the fine grid, as in the top-down
        fusion that upsamples it; its weight is spread evenly over those
        cells (nearest-neighbour upsampling divided by f^2) and added to
        the fine level's, so each map still sums to 1.

        Args:
            feats (tuple[Tensor, Tensor]): The neck's output, tokens and
                position embedding, (B, T, d) each, with ``level_shapes``
                ((h, w) per level, in token order; see
                ``SubtleFeatureNeck``).

        Returns:
            Tensor: (B, code_length, h, w), non-negative, each map summing
            to 1 over its h x w cells.
        """
        memory, memory_pos = feats
        shapes = getattr(feats, 'level_shapes', None)
        if not shapes:
            raise ValueError(
                f'{type(self).__name__}.attention_maps needs the grid of '
                f"the neck's tokens: pass the output of SubtleFeatureNeck "
                f'(a tuple with level_shapes), got {type(feats).__name__}')
        query_pos = self.query_embed.weight.unsqueeze(0).expand(
            memory.size(0), -1, -1)
        weights = self.decoder_layer.cross_attention_weights(
            torch.zeros_like(query_pos), query_pos, memory, memory_pos)
        return tokens_to_grid(weights, shapes)


def tokens_to_grid(weights: Tensor,
                   shapes: Sequence[Tuple[int, int]]) -> Tensor:
    """Token weights of several levels on the first (finest) level's grid.

    Args:
        weights (Tensor): (B, M, T) weights over the tokens of all levels,
            level after level, each row-major.
        shapes (Sequence[tuple[int, int]]): (h, w) of each level; the
            first level's sides are whole multiples of the others'.

    Returns:
        Tensor: (B, M, h, w), a coarse token's weight spread evenly over
        the fine cells it covers; sums over cells equal sums over tokens.
    """
    sizes = [h * w for h, w in shapes]
    if sum(sizes) != weights.size(-1):
        raise ValueError(
            f'token grids {list(shapes)} hold {sum(sizes)} tokens, the '
            f'weights cover {weights.size(-1)}')
    height, width = shapes[0]
    grid = 0
    for level, (h, w) in zip(weights.split(sizes, dim=-1), shapes):
        if height % h or width % w:
            raise ValueError(
                f'token grid {h}x{w} does not divide the finest grid '
                f'{height}x{width}')
        fh, fw = height // h, width // w
        level = level.unflatten(-1, (h, w))
        grid = grid + level.repeat_interleave(fh, dim=-2).repeat_interleave(
            fw, dim=-1) / (fh * fw)
    return grid
