"""FISH's head (as aassxun/DSH_Analysis ``models/fish.py`` runs it): class
logits, and the hash layer on the logits with every class but the
predicted one damped."""
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from .base_hash_head import BaseHashHead


@MODELS.register_module()
class ClassMaskedHashHead(BaseHashHead):
    """``logits = classifier(x)``; codes ``hash_layer(logits * mask)``, the
    mask ``class_mask_rate`` everywhere and 1 at each image's arg-max class
    (a constant: no gradient through the choice). No squashing: the codes
    are regressed to +-1 and binarised by their sign.

    Args:
        code_length (int): Bits k.
        num_classes (int): C, the training set's classes.
        in_channels (int): Width of the pooled feature. Defaults to 2048.
        class_mask_rate (float): The mask's value off the predicted class.
            Defaults to 0.7 (the reference's).
        init_cfg (dict, optional): None keeps PyTorch's default Linear
            initialisation (the reference's).

    Returns (forward):
        Tensor | dict[str, Tensor]: in eval mode the relaxed codes (B, k);
        in training ``relaxed_codes`` (B, k), ``logits`` (B, C) and
        ``feature_map`` (B, C', h, w), the neck's map, for the loss.
    """

    # One row per bit: the retriever reads a checkpoint's code length here.
    code_length_param = 'hash_layer.weight'

    def __init__(self,
                 code_length: int,
                 num_classes: int,
                 in_channels: int = 2048,
                 class_mask_rate: float = 0.7,
                 init_cfg: Optional[dict] = None):
        super().__init__(code_length, init_cfg=init_cfg)
        if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                or num_classes < 2):
            raise ValueError(f'model.head.num_classes must be an int >= 2, '
                             f'got {num_classes!r}')
        self.class_mask_rate = class_mask_rate
        self.classifier = nn.Linear(in_channels, num_classes)
        self.hash_layer = nn.Linear(num_classes, code_length)

    def forward(self, feats: Sequence[Tensor]
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Args:
            feats (tuple[Tensor]): ``FeatureFilterNeck``'s (pooled (B, C'),
                map (B, C', h, w)).
        """
        pooled, feature_map = feats
        if pooled.dim() != 2 or pooled.size(1) != self.classifier.in_features:
            raise ValueError(
                f'ClassMaskedHashHead expects pooled (B, '
                f'{self.classifier.in_features}) features (model.head.'
                f'in_channels), got {tuple(pooled.shape)}')
        logits = self.classifier(pooled)
        mask = torch.full_like(logits, self.class_mask_rate).scatter_(
            1, logits.detach().argmax(1, keepdim=True), 1.0)
        codes = self.hash_layer(logits * mask)
        if not self.training:
            return codes
        return dict(relaxed_codes=codes, logits=logits,
                    feature_map=feature_map)
