"""DAHNet's loss as aassxun/DSH_Analysis ``DAHNet_train.py`` runs it:
ADSH's hash and quantisation terms, plus cross-entropy of the train-only
classifiers, 1/2 on the global logits and 1/6 on each part's."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from ..databases import DatabaseView
from .adsh_loss import ADSHLoss


def class_targets(labels: Tensor, num_classes: int, dtype) -> Tensor:
    """The reference's float targets: one-hot rows of class ids (n,) or the
    given (n, C) multi-hot rows.

    Raises:
        ValueError: A class outside the classifiers' ``num_classes``.
    """
    if labels.dim() == 1:
        if len(labels) and int(labels.max()) >= num_classes:
            raise ModelConfigError(
                f'class id {int(labels.max())} is outside the classifiers\' '
                f'model.head.num_classes={num_classes}: set it to the '
                f'training set\'s number of classes')
        return F.one_hot(labels.long(), num_classes).to(dtype)
    if labels.size(1) != num_classes:
        raise ModelConfigError(
            f'labels have {labels.size(1)} classes, the classifiers '
            f'model.head.num_classes={num_classes}')
    return labels.to(dtype)


@MODELS.register_module()
class DAHNetLoss(ADSHLoss):
    """ADSH's loss plus DAHNet's classification terms:

    ``loss_cls = global_weight * CE(global_logits, y)`` and
    ``loss_part_cls = part_weight * sum_i CE(part_logits[:, i], y)``, CE
    the batch mean of ``-sum_c y_c log softmax(z)_c`` with the reference's
    float targets (one-hot rows; multi-hot rows as given).

    ``add_classification=False`` is the paper's "DAHNet--" (the DSH logs'
    ``-wocls`` runs): the cross-entropies are computed and logged as
    ``cls_ce`` and ``part_cls_ce`` (no ``loss`` in the name, so MMEngine
    adds them to nothing) and the classifiers get no gradient.

    ADSH's gamma and similarity are the database's (``model.database``,
    the reference's: ``ADSHDatabase`` with gamma 200 and the soft S).

    Args:
        scale_bits (int): Numerator of ADSH's 12/k scaling. Defaults to 12.
        global_weight (float): Weight of the global CE. Defaults to 1/2.
        part_weight (float): Weight of each part's CE. Defaults to 1/6.
        add_classification (bool): Add the CE terms to the loss.
            Defaults to True (the reference's HEAD, "DAHNet*").
    """

    def __init__(self,
                 scale_bits: int = 12,
                 global_weight: float = 0.5,
                 part_weight: float = 1.0 / 6.0,
                 add_classification: bool = True):
        super().__init__(scale_bits)
        self.global_weight = global_weight
        self.part_weight = part_weight
        self.add_classification = add_classification

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     global_logits: Tensor = None, part_logits: Tensor = None,
                     **train_outputs) -> Dict[str, Tensor]:
        """The classification terms.

        Args:
            relaxed_codes (Tensor): F, (n, k) (unused here).
            view (DatabaseView): Needs ``labels``.
            global_logits (Tensor): (n, C).
            part_logits (Tensor): (n, P, C).

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_part_cls``, or with
            ``add_classification=False`` ``cls_ce`` and ``part_cls_ce``.
        """
        super().extra_losses(relaxed_codes, view, **train_outputs)
        if global_logits is None or part_logits is None:
            raise TypeError(
                'DAHNetLoss needs the classifiers\' logits: pair it with '
                "model.head=dict(type='DAHNetHashHead', num_classes=...)")
        dtype = torch.promote_types(global_logits.dtype, torch.float32)
        targets = class_targets(view.labels, global_logits.size(1), dtype)
        with torch.autocast(global_logits.device.type, enabled=False):
            global_ce = F.cross_entropy(global_logits.to(dtype), targets)
            part_ce = sum(
                F.cross_entropy(part_logits[:, i].to(dtype), targets)
                for i in range(part_logits.size(1)))
        terms = dict(cls=self.global_weight * global_ce,
                     part_cls=self.part_weight * part_ce)
        if self.add_classification:
            return {f'loss_{name}': value for name, value in terms.items()}
        return {f'{name}_ce': value.detach() for name, value in terms.items()}
