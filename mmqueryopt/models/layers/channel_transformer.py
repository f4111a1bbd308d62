"""SEMICON's interactive channel transformer: attention between the
channels of a map (no attention over positions), in two stages."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def signed_sqrt(scores: Tensor, eps: float = 1e-5) -> Tensor:
    """``sign(a) * sqrt(|a| + eps)``, which SEMICON applies to attention
    scores before the softmax to flatten them."""
    return torch.sign(scores) * torch.sqrt(scores.abs() + eps)


class ChannelTransformer(nn.Module):
    """Two-stage channel attention of SEMICON (ICT).

    The C = heads x d channels are viewed as ``heads`` groups of ``d``.

    1. ``channel_qkv`` (1x1 conv C -> 3C, ``heads`` groups, bias) gives
       q, k, v of shape (B, heads, d, N) (N = H x W, the channel axis read
       as (3, heads, d)); within each head the d channels attend to each
       other: ``softmax(signed_sqrt(q k^T / sqrt(d))) v``, plus the input.
       The result's channels are then reordered from (head, d) to
       (d, head) and batch-normalised: y.
    2. ``head_qkv`` (1x1 conv C -> 3C, ``d`` groups, bias) on ReLU(y) gives
       q, k, v of shape (B, d, heads, N); within each of the d groups the
       ``heads`` channels attend to each other (scale 1/sqrt(heads)); the
       result, reordered back to (head, d), is added to ReLU(y), which
       stays in (d, head) order.

    The reference computes y, then ReLU with ``inplace=True`` on it, so the
    residual it adds in stage 2 is ReLU(y), not y; reproduced here. The
    reshapes follow the reference exactly (which channels a group of
    ``channel_qkv`` feeds is fixed by reading its 3C outputs as
    (3, heads, d)), so converted reference weights compute its outputs.

    Args:
        dim (int): Channels C.
        num_heads (int, optional): Heads; None for the reference's
            ``max(C // 64, 16)`` (32 heads of 64 channels at C = 2048).

    Returns (forward):
        Tensor: (B, C, H, W), the input's shape.
    """

    def __init__(self, dim: int, num_heads: Optional[int] = None):
        super().__init__()
        num_heads = max(dim // 64, 16) if num_heads is None else num_heads
        if num_heads < 1 or dim % num_heads:
            raise ValueError(
                f'ChannelTransformer: {dim} channels do not split into '
                f'{num_heads} heads of equal width')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.channel_qkv = nn.Conv2d(dim, 3 * dim, 1, groups=num_heads)
        self.norm = nn.BatchNorm2d(dim)
        self.head_qkv = nn.Conv2d(dim, 3 * dim, 1, groups=self.head_dim)

    @staticmethod
    def _attend(qkv: Tensor, groups: int, width: int, scale: float) -> Tensor:
        """Attention between the ``width`` channels of each of ``groups``.

        Args:
            qkv (Tensor): (B, 3 * groups * width, H, W).

        Returns:
            Tensor: (B, groups, width, H * W).
        """
        batch = qkv.size(0)
        query, key, value = qkv.reshape(batch, 3, groups, width,
                                        -1).unbind(1)
        scores = signed_sqrt(query @ key.transpose(-2, -1) * scale)
        return scores.softmax(dim=-1) @ value

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        heads, dim = self.num_heads, self.head_dim
        within_heads = self._attend(self.channel_qkv(x), heads, dim,
                                    dim**-0.5)
        mixed = within_heads.reshape(x.shape) + x
        # (head, d) -> (d, head): stage 2 groups a channel of every head.
        mixed = mixed.reshape(batch, heads, dim, height, width).transpose(
            1, 2).reshape(x.shape)
        normed = F.relu(self.norm(mixed))
        across_heads = self._attend(self.head_qkv(normed), dim, heads,
                                    heads**-0.5)
        across_heads = across_heads.reshape(batch, dim, heads, height,
                                            width).transpose(1, 2)
        return across_heads.reshape(x.shape) + normed
