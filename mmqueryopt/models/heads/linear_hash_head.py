"""One linear layer from a pooled feature to the relaxed bits: the hash
layer of ADSH, HashNet, DPSH and CSQ on a ResNet-50."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from .base_hash_head import BaseHashHead

_ACTIVATIONS = ('tanh', None)


@MODELS.register_module()
class LinearHashHead(BaseHashHead):
    """``fc(x)``, optionally squashed by tanh, one output per bit.

    Args:
        code_length (int): Bits k.
        in_channels (int): Width of the pooled feature. Defaults to 2048
            (ResNet-50 after global average pooling).
        activation (str | None): ``'tanh'`` (ADSH, CSQ: the reference
            model's output) or None (HashNet, DPSH: the raw output, which
            their losses squash themselves). Defaults to ``'tanh'``.
        init_cfg (dict, optional): None keeps PyTorch's default Linear
            initialisation (DSH_Analysis' fc); DeepHash-pytorch's hash
            layer is ``dict(type='Normal', layer='Linear', std=0.01,
            bias=0)``.

    Returns (forward):
        Tensor: (B, k) relaxed codes in train and eval mode alike.
    """

    # One row per bit: the retriever reads a checkpoint's code length here.
    code_length_param = 'fc.weight'

    def __init__(self,
                 code_length: int,
                 in_channels: int = 2048,
                 activation: Optional[str] = 'tanh',
                 init_cfg: Optional[dict] = None):
        super().__init__(code_length, init_cfg=init_cfg)
        if activation not in _ACTIVATIONS:
            raise ModelConfigError(f'model.head.activation must be one of '
                             f'{_ACTIVATIONS}, got {activation!r}')
        self.activation = activation
        self.fc = nn.Linear(in_channels, code_length)

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Relaxed codes of pooled features.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C), or a neck's tuple whose
                last entry is that (MMPretrain's ``GlobalAveragePooling``).

        Returns:
            Tensor: (B, k).
        """
        feat = feats if isinstance(feats, Tensor) else feats[-1]
        if feat.dim() != 2 or feat.size(1) != self.fc.in_features:
            raise ValueError(
                f'LinearHashHead expects pooled (B, {self.fc.in_features}) '
                f'features (model.head.in_channels), got {tuple(feat.shape)}')
        out = self.fc(feat)
        return torch.tanh(out) if self.activation == 'tanh' else out
