"""ExchNet's hash layer: one linear layer and tanh over the parts and the
global feature, handing the neck's part statistics on to the loss."""
from typing import Dict, Union

from torch import Tensor

from mmqueryopt.registry import MODELS
from .linear_hash_head import LinearHashHead


@MODELS.register_module()
class ExchNetHashHead(LinearHashHead):
    """``tanh(fc(feats))`` of :class:`ExchNetNeck`'s output.

    In training the neck's further outputs (``part_feats``,
    ``spatial_dists``, ``channel_dists`` and, from the exchange round,
    ``anchor_feats``) pass through to :class:`ExchNetLoss`.

    Args:
        code_length (int): Bits k.
        in_channels (int): Width of the concatenated feature, (M + 1) * C'.
            Defaults to 5 * 2048 (four ResNet-50 parts and the global
            feature).
        init_cfg (dict, optional): None keeps PyTorch's default Linear
            initialisation, as the reference.

    Returns (forward):
        Tensor | dict[str, Tensor]: (B, k) relaxed codes in eval mode; in
        training a dict with ``relaxed_codes`` (B, k) and the neck's
        further outputs.
    """

    def __init__(self,
                 code_length: int,
                 in_channels: int = 5 * 2048,
                 init_cfg: dict = None):
        super().__init__(code_length, in_channels, activation='tanh',
                         init_cfg=init_cfg)

    def forward(self, feats: Dict[str, Tensor]
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Relaxed codes, and in training the loss's further inputs.

        Args:
            feats (dict[str, Tensor]): :class:`ExchNetNeck`'s output, with
                ``feats`` (B, in_channels).

        Returns:
            Tensor | dict[str, Tensor]: See the class docstring.
        """
        if not isinstance(feats, dict) or 'feats' not in feats:
            raise TypeError(
                f'ExchNetHashHead takes ExchNetNeck\'s dict output, got '
                f'{type(feats).__name__}: pair it with model.neck='
                f"dict(type='ExchNetNeck', ...)")
        codes = super().forward(feats['feats'])
        if not self.training:
            return codes
        extras = {key: value for key, value in feats.items() if key != 'feats'}
        return dict(relaxed_codes=codes, **extras)
