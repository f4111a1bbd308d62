"""The "+S" row of QueryOpt's ablation (Table 2): the subtle feature
extractor's tokens, averaged, under the base network's hash layer."""
from typing import Sequence

from torch import Tensor

from mmqueryopt.registry import MODELS
from .linear_hash_head import LinearHashHead


@MODELS.register_module()
class TokenPoolHashHead(LinearHashHead):
    """``tanh(fc(mean_t tokens[:, t]))``: ADSH's hash layer on the mean of
    the neck's encoded tokens, one output per bit.

    Table 2 adds the subtle feature extractor (S) to the base network
    (ResNet-50 with ADSH's pooled features and one hash layer) before the
    query decoder (Q) replaces that hash layer; the paper does not say how
    the tokens reach the layer in between. This head is the base network's
    step kept as is: global average pooling (over the tokens of both
    levels instead of over C4's cells), one linear layer with PyTorch's
    default initialisation, tanh. It adds ``(d + 1) * k`` parameters and
    has no auxiliary branches (the training output is the k bits).

    Args:
        code_length (int): Bits k.
        in_channels (int): Token width d (``model.neck.embed_dims``).
            Defaults to 384.
        activation (str | None): As :class:`LinearHashHead`. Defaults to
            ``'tanh'``.
        init_cfg (dict, optional): As :class:`LinearHashHead`.

    Returns (forward):
        Tensor: (B, k) relaxed codes in train and eval mode alike.
    """

    def __init__(self, code_length: int, in_channels: int = 384,
                 activation='tanh', init_cfg=None):
        super().__init__(code_length, in_channels, activation, init_cfg)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Relaxed codes of the mean token.

        Args:
            feats (tuple[Tensor, Tensor]): The neck's tokens and their
                position embedding, each (B, T, d); only the tokens are
                pooled (the position embedding is the same for every
                image).

        Returns:
            Tensor: (B, k).
        """
        tokens = feats[0] if isinstance(feats, (tuple, list)) else feats
        if tokens.dim() != 3:
            raise ValueError(
                f'TokenPoolHashHead expects (B, T, d) tokens from a token '
                f'neck (e.g. SubtleFeatureNeck), got {tuple(tokens.shape)}')
        return super().forward(tokens.mean(dim=1))
