"""The feature that shallow hashing sees: a model's backbone and neck,
pooled to one vector per image.

Necks return different things; :func:`pooled_feature` turns each into a
``(B, D)`` matrix by one rule per output type:

================================  =========================================
neck output                       the feature
================================  =========================================
dict (ExchNet's neck)             its ``'feats'`` entry, then as below
tuple of (B, C) vectors           the last one: what a hash head reads from
(MMPretrain's                     MMPretrain's pooling of several maps
``GlobalAveragePooling``)
other tuple (QueryOpt's           its first entry, the features (the rest is
``LevelTokens`` (tokens,          a position embedding or attended maps),
position), A2-Net++'s             then as below
(descriptors, attended))
(B, D) vector (A2-Net's neck)     as it is
(B, N, C) tokens or parts         the mean over the N tokens (SEMICON's
                                  (B, 4, C) global and part features too)
(B, C, H, W) map                  global average pooling: (B, C)
(B, D, C, H, W) maps              each map average-pooled, then flattened:
(A2-Net++'s descriptors)          (B, D * C)
================================  =========================================

The model runs in eval mode, so a neck returns what it gives at test time.
"""
from typing import Tuple

from torch import Tensor


def backbone_neck_features(model, inputs: Tensor) -> Tensor:
    """The pooled neck output of preprocessed images (the ``compute`` of
    :func:`mmqueryopt.retrieval.encoder.encode_outputs`).

    Args:
        model: A ``HashRetriever`` (``backbone`` and ``neck``), eval mode.
        inputs (Tensor): (B, 3, H, W), as its data preprocessor returns them.

    Returns:
        Tensor: (B, D), see :func:`pooled_feature`.
    """
    return pooled_feature(model.neck(model.backbone(inputs)))


def pooled_feature(output) -> Tensor:
    """One vector per image of a neck's output (the module's table).

    Args:
        output (Tensor | tuple | dict): What the neck returned.

    Returns:
        Tensor: (B, D).

    Raises:
        ValueError: An output of which no rule takes a feature; the message
            names its type and shape.
    """
    return _feature_and_rule(output)[0]


def describe_feature(output) -> str:
    """Which rule :func:`pooled_feature` applies to ``output``, e.g.
    ``'(B, C, H, W) map: global average pooling'``, for reports."""
    return _feature_and_rule(output)[1]


def _feature_and_rule(output) -> Tuple[Tensor, str]:
    prefix = ''
    if isinstance(output, dict):
        if 'feats' not in output:
            raise ValueError(
                f"the neck returned a dict without 'feats' (keys "
                f'{sorted(output)}): no feature to pool')
        output, prefix = output['feats'], "'feats' of a dict, "
    elif isinstance(output, (tuple, list)):
        if not output or not all(
                isinstance(item, Tensor) or item is None for item in output):
            raise ValueError(
                f'the neck returned a {type(output).__name__} of '
                f'{[type(item).__name__ for item in output]}: no feature to '
                f'pool')
        if all(isinstance(item, Tensor) and item.dim() == 2
               for item in output):
            output, prefix = output[-1], 'last of a tuple of vectors, '
        else:
            output, prefix = output[0], 'first of a tuple, '
    if not isinstance(output, Tensor):
        raise ValueError(f'the neck returned a {type(output).__name__}: no '
                         f'feature to pool')
    feature, rule = _pool(output)
    return feature, prefix + rule


def _pool(tensor: Tensor) -> Tuple[Tensor, str]:
    if tensor.dim() == 2:
        return tensor, '(B, D) vector: as it is'
    if tensor.dim() == 3:
        return tensor.mean(dim=1), '(B, N, C) tokens: mean over tokens'
    if tensor.dim() == 4:
        return (tensor.mean(dim=(2, 3)),
                '(B, C, H, W) map: global average pooling')
    if tensor.dim() == 5:
        return (tensor.mean(dim=(3, 4)).flatten(1),
                '(B, D, C, H, W) maps: each average-pooled, flattened')
    raise ValueError(f'the neck returned a {tuple(tensor.shape)} tensor: '
                     f'no rule pools a {tensor.dim()}-dimensional output')
