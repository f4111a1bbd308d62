"""Post-norm transformer layers of DETR's form, as QueryOpt uses them.

``torch.nn.TransformerEncoderLayer`` cannot add a positional embedding to the
queries and keys only, and its decoder always has query self-attention, which
QueryOpt removes; hence these two small layers. Attribute names follow DETR's
(``self_attn``, ``linear1``, ``norm1``...) so that checkpoints map one to one.
"""
import torch
from torch import Tensor, nn


class _FFN(nn.Module):
    """``linear2(relu(linear1(x)))``, the feed-forward half of both layers."""

    def __init__(self, embed_dims: int, ffn_dims: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(embed_dims, ffn_dims)
        self.linear2 = nn.Linear(ffn_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))


class EncoderLayer(nn.Module):
    """Post-norm encoder layer; position is added to queries and keys only.

    Args:
        embed_dims (int): Token width d.
        num_heads (int): Attention heads.
        ffn_dims (int): Hidden width of the feed-forward network.
        dropout (float): Dropout in attention and FFN. QueryOpt uses 0.
    """

    def __init__(self, embed_dims: int = 384, num_heads: int = 8,
                 ffn_dims: int = 2048, dropout: float = 0.0):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.ffn = _FFN(embed_dims, ffn_dims, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self, tokens: Tensor, pos: Tensor) -> Tensor:
        """Args: tokens, pos (Tensor): (B, T, d). Returns: Tensor (B, T, d)."""
        query_key = tokens + pos
        tokens = self.norm1(
            tokens + self.self_attn(query_key, query_key, tokens,
                                    need_weights=False)[0])
        return self.norm2(tokens + self.ffn(tokens))


class CrossAttentionDecoderLayer(nn.Module):
    """Post-norm decoder layer with cross-attention only (no self-attention).

    Args:
        embed_dims (int): Token width d.
        num_heads (int): Attention heads.
        ffn_dims (int): Hidden width of the feed-forward network.
        dropout (float): Dropout in attention and FFN. QueryOpt uses 0.
    """

    def __init__(self, embed_dims: int = 384, num_heads: int = 8,
                 ffn_dims: int = 2048, dropout: float = 0.0):
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.ffn = _FFN(embed_dims, ffn_dims, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self, target: Tensor, query_pos: Tensor, memory: Tensor,
                memory_pos: Tensor) -> Tensor:
        """Decode ``target`` against ``memory``.

        Args:
            target (Tensor): (B, Q, d) decoder state.
            query_pos (Tensor): (B, Q, d) or (1, Q, d) query embedding.
            memory (Tensor): (B, T, d) encoder tokens.
            memory_pos (Tensor): (B, T, d) their position embedding.

        Returns:
            Tensor: (B, Q, d).
        """
        attended = self.cross_attn(target + query_pos, memory + memory_pos,
                                   memory, need_weights=False)[0]
        target = self.norm1(target + attended)
        return self.norm2(target + self.ffn(target))

    def cross_attention_weights(self, target: Tensor, query_pos: Tensor,
                                memory: Tensor,
                                memory_pos: Tensor) -> Tensor:
        """The attention of each query over the memory tokens that
        :meth:`forward` applies, averaged over heads.

        Args: as :meth:`forward`.

        Returns:
            Tensor: (B, Q, T), non-negative, each row summing to 1 (in
            training mode after attention dropout, as the forward uses it).
        """
        return self.cross_attn(target + query_pos, memory + memory_pos,
                               memory, need_weights=True,
                               average_attn_weights=True)[1]
