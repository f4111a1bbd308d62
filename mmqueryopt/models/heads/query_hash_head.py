"""QueryOpt's hash head: one learnable query per bit, decoded by
cross-attention, plus parameter-free auxiliary branches in training."""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..layers import CrossAttentionDecoderLayer


@MODELS.register_module()
class QueryHashHead(BaseModule):
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
        super().__init__(init_cfg=init_cfg)
        if not isinstance(code_length, int) or code_length < 1:
            raise ValueError(
                f'code_length must be a positive int, got {code_length!r}')
        if code_length > relaxed_dims or relaxed_dims % code_length:
            raise ValueError(
                f'code_length={code_length} must divide relaxed_dims='
                f'{relaxed_dims} (the auxiliary branches are whole copies of '
                f'the queries); choose a divisor of {relaxed_dims} or set '
                f'relaxed_dims to a multiple of {code_length}')
        self.code_length = code_length
        self.relaxed_dims = relaxed_dims
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
        memory, memory_pos = feats
        queries = (self.branch_queries()
                   if self.training else self.query_embed.weight)
        query_pos = queries.unsqueeze(0).expand(memory.size(0), -1, -1)
        decoded = self.decoder_layer(
            torch.zeros_like(query_pos), query_pos, memory, memory_pos)
        decoded = F.normalize(self.decoder_norm(decoded), dim=-1)
        return torch.tanh(self.bit_proj(decoded).squeeze(-1))
