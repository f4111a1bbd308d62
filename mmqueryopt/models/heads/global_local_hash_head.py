"""SEMICON's hash head: bare weights per feature, the code split between
the global feature and three part features."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from .base_hash_head import BaseHashHead

NUM_PARTS = 3


def global_local_split(code_length: int) -> Tuple[int, int]:
    """(global bits, bits per part) of SEMICON's reference code: k // 6
    per part and k // 2 global, except 17 at k = 32 and k // 2 + 2 at
    k = 16 and 64 (16 and 64 are in aassxun/DSH_Analysis only).

    Raises:
        ValueError: The split does not give k bits (k // 6 == 0, or k none
            of 16, 32, 64 and not a multiple of 6).
    """
    local = code_length // (2 * NUM_PARTS)
    global_ = code_length // 2 + {32: 1, 16: 2, 64: 2}.get(code_length, 0)
    if local == 0 or global_ + NUM_PARTS * local != code_length:
        raise ModelConfigError(
            f'model.head.code_length={code_length}: SEMICON splits a code '
            f'into k // 2 global bits (17 at 32, k // 2 + 2 at 16 and 64) '
            f'and k // 6 bits for each of 3 parts, which gives '
            f'{global_} + 3 x {local} = {global_ + NUM_PARTS * local} bits; '
            f'use a multiple of 6 (12, 24, 48, ...), 16, 32 or 64')
    return global_, local


@MODELS.register_module()
class GlobalLocalHashHead(BaseHashHead):
    """Codes ``tanh([W_G g ; W_1 l_1 ; W_2 l_2 ; W_3 l_3])``.

    Bare weights without bias (the reference's W_G, W_L1..3), each
    Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(d), 1/sqrt(d)); the
    rows follow :func:`global_local_split` (12 bits: 6 global + 2 + 2 + 2).
    Same output in training and evaluation (the codes are its signs).

    Args:
        code_length (int): Bits k.
        in_channels (int): Width d of each feature. Defaults to 2048.
        init_cfg (dict, optional): MMEngine init config.

    Returns (forward):
        Tensor: (B, k) relaxed codes in (-1, 1).
    """

    def __init__(self, code_length: int, in_channels: int = 2048,
                 init_cfg=None):
        super().__init__(code_length, init_cfg=init_cfg)
        global_bits, part_bits = global_local_split(code_length)
        self.in_channels = in_channels
        self.global_weight = nn.Parameter(
            torch.empty(global_bits, in_channels))
        self.local_weights = nn.ParameterList(
            nn.Parameter(torch.empty(part_bits, in_channels))
            for _ in range(NUM_PARTS))
        self.reset_weights()

    def reset_weights(self) -> None:
        for weight in (self.global_weight, *self.local_weights):
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            self.reset_weights()

    def forward(self, feats: Tensor) -> Tensor:
        """Relaxed codes.

        Args:
            feats (Tensor): (B, 4, d): the global feature, then the parts'
                (:class:`SuppressionEnhancingNeck`'s output).

        Returns:
            Tensor: (B, k).
        """
        if feats.dim() != 3 or feats.shape[1:] != (NUM_PARTS + 1,
                                                   self.in_channels):
            raise ValueError(
                f'GlobalLocalHashHead expects (B, {NUM_PARTS + 1}, '
                f'{self.in_channels}) features (the global one and '
                f'{NUM_PARTS} parts; model.head.in_channels), got '
                f'{tuple(feats.shape)}')
        weights = (self.global_weight, *self.local_weights)
        logits = [F.linear(feats[:, i], w) for i, w in enumerate(weights)]
        return torch.tanh(torch.cat(logits, dim=1))
