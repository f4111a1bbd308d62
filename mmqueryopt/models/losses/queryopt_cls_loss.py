"""QueryOpt† (QueryOpt's appendix, Table 5: "trained with classification"):
ADSH's terms plus a weighted cross-entropy of the head's class logits. The
paper gives no formula; this is our reconstruction."""
from typing import Dict, Optional

import torch.nn.functional as F
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView
from .adsh_loss import ADSHLoss


@MODELS.register_module()
class QueryOptClsLoss(ADSHLoss):
    """``ADSHLoss`` + ``cls_weight * CE(class_logits, y)``.

    The labels come from the database's view (``view.labels``): class ids,
    or multi-hot rows taken as a uniform distribution over their classes.

    Args:
        scale_bits (int): ADSH's 12/L numerator. Defaults to 12.
        cls_weight (float): Weight of the cross-entropy. Defaults to 1.
    """

    def __init__(self, scale_bits: int = 12, cls_weight: float = 1.0):
        super().__init__(scale_bits)
        if cls_weight < 0:
            raise ValueError(f'model.loss.cls_weight must be >= 0, got '
                             f'{cls_weight}')
        self.cls_weight = cls_weight

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     class_logits: Optional[Tensor] = None,
                     **train_outputs) -> Dict[str, Tensor]:
        """Args:
            relaxed_codes (Tensor): F, (n, L).
            view (DatabaseView): Needs ``labels``.
            class_logits (Tensor): (n, C), from
                ``QueryHashHeadWithClassifier``.

        Returns:
            dict[str, Tensor]: ``loss_cls``.
        """
        if class_logits is None:
            raise TypeError(
                "QueryOptClsLoss needs the head's class logits: use "
                "model.head=dict(type='QueryHashHeadWithClassifier', ...)")
        super().extra_losses(relaxed_codes, view, **train_outputs)
        labels = view.labels
        if labels.dim() == 2:
            labels = labels.float() / labels.sum(1, keepdim=True).float()
        return dict(loss_cls=self.cls_weight * F.cross_entropy(
            class_logits.float(), labels))
