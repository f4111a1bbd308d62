"""AGMH's stepwise interactive external attention (SIEA) block."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StepwiseExternalAttention(nn.Module):
    """External attention whose memory queries interact head by head.

    For an input map X (C x H x W), with N = H * W positions:

    1. ``Y = in_proj(X)`` (1x1 conv with bias), flattened to C x N.
    2. One query per head: ``Q_h = M_h Y`` with ``M_h`` (S x C).
    3. Stepwise interaction: ``A = Q_1``, then for h = 2..heads
       ``A = P_h [A ; Q_h]`` with ``P_h`` (S x 2S), [;] stacking memory rows.
    4. External attention's double normalisation: softmax of A over the N
       positions, then each position divided by its sum over the S rows.
    5. ``Z = M_v A`` with ``M_v`` (C x S), back to C x H x W, 1x1 conv + BN,
       plus X, ReLU.

    Args:
        channels (int): C, input and output channels.
        num_heads (int): Query heads (at least 1). Defaults to 4.
        memory_units (int): S, memory rows. Defaults to 128.

    Shapes:
        input (B, C, H, W) -> output (B, C, H, W).
    """

    def __init__(self, channels: int, num_heads: int = 4,
                 memory_units: int = 128):
        super().__init__()
        if num_heads < 1:
            raise ValueError(f'num_heads must be >= 1, got {num_heads}')
        self.num_heads = num_heads
        self.memory_units = memory_units
        self.in_proj = nn.Conv2d(channels, channels, 1)
        self.head_queries = nn.ModuleList(
            nn.Conv1d(channels, memory_units, 1, bias=False)
            for _ in range(num_heads))
        self.step_mixers = nn.ModuleList(
            nn.Conv1d(2 * memory_units, memory_units, 1, bias=False)
            for _ in range(num_heads - 1))
        self.memory_values = nn.Conv1d(memory_units, channels, 1, bias=False)
        self.out_proj = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels))
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' initialisation: normal(0, sqrt(2 / fan_out)) for
        every convolution, BN weight 1 and bias 0. (Their enclosing module
        then redraws the 2-D convs Kaiming-normal fan_out, which is the
        same distribution.)"""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)):
                fan_out = module.out_channels * math.prod(module.kernel_size)
                nn.init.normal_(module.weight, 0, math.sqrt(2 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        values = self.in_proj(x).flatten(2)  # (B, C, N)
        logits = self.head_queries[0](values)  # (B, S, N)
        for query, mixer in zip(self.head_queries[1:], self.step_mixers):
            logits = mixer(torch.cat([logits, query(values)], dim=1))
        attn = F.softmax(logits, dim=-1)
        # The 1e-9 is the authors': it keeps their rounding.
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
        out = self.memory_values(attn).view(batch, channels, height, width)
        return F.relu(self.out_proj(out) + x)
