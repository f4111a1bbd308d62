"""FISH's loss (as aassxun/DSH_Analysis ``fish.py`` trains it): class
cross-entropy on the image and on the image with its most salient region
erased, plus the codes' squared error to the database's label codes."""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView


def erase_peaks(images: Tensor, feature_map: Tensor,
                thresholds: Tensor) -> Tensor:
    """The images with their peak region set to 0.

    The channel sum of ``feature_map`` (no gradient) is upsampled to the
    images' size (bilinear, corners aligned); pixels where it reaches
    ``threshold`` times its maximum over the image are erased.

    Args:
        images (Tensor): (n, 3, H, W), normalised.
        feature_map (Tensor): (n, C, h, w).
        thresholds (Tensor): (n,) fractions of each image's maximum.

    Returns:
        Tensor: (n, 3, H, W).
    """
    saliency = F.interpolate(
        feature_map.detach().sum(1, keepdim=True),
        size=images.shape[-2:], mode='bilinear', align_corners=True)
    peak = saliency.flatten(1).max(1).values
    keep = saliency < (thresholds * peak)[:, None, None, None]
    return images * keep.to(images.dtype)


@MODELS.register_module()
class FishLoss(nn.Module):
    """``CE(logits, y) + MSE(codes, B[omega]) + CE(logits of the erased
    images, y)``, weighted.

    The erased images (:func:`erase_peaks`, one threshold per image drawn
    from U(``threshold_range``)) go through the network again, with
    gradient: the retriever hands the loss the images (``needs_inputs``)
    and the network (``needs_network``: a callable from images to what the
    head returns). The label codes B[omega] come from the database's view
    (:class:`~mmqueryopt.models.databases.LabelCodeDatabase`), the labels
    from ``view.labels`` (multi-hot: the first of the largest entries, the
    reference's arg-max).

    Args:
        cls_weight (float): Weight of the CE on the images. Defaults to 1.
        code_weight (float): Weight of the codes' mean squared error (over
            the n x k entries). Defaults to 1.
        erased_weight (float): Weight of the CE on the erased images.
            Defaults to 1.
        threshold_range (Sequence[float]): Bounds of the erasing threshold.
            Defaults to (0.9, 1.0).
    """

    needs_inputs = True
    needs_network = True

    def __init__(self,
                 cls_weight: float = 1.0,
                 code_weight: float = 1.0,
                 erased_weight: float = 1.0,
                 threshold_range: Sequence[float] = (0.9, 1.0)):
        super().__init__()
        low, high = threshold_range
        if not 0 < low <= high <= 1:
            raise ValueError(f'model.loss.threshold_range must be (low, high)'
                             f' with 0 < low <= high <= 1, got '
                             f'{tuple(threshold_range)}')
        self.cls_weight = cls_weight
        self.code_weight = code_weight
        self.erased_weight = erased_weight
        self.threshold_range = (low, high)

    def forward(self,
                relaxed_codes: Tensor,
                view: DatabaseView,
                logits: Tensor,
                feature_map: Tensor,
                inputs: Tensor,
                network: Optional[Callable[[Tensor], Dict[str, Tensor]]] = None
                ) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): (n, k).
            view (DatabaseView): ``batch_database_codes`` (n, k), the label
                codes, and ``labels``; a learned database is refused.
            logits (Tensor): (n, C).
            feature_map (Tensor): (n, C', h, w).
            inputs (Tensor): (n, 3, H, W) the batch's images.
            network (callable): Images to the head's training outputs.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_code``,
            ``loss_cls_erased``.
        """
        if view.database_codes is not None or (
                view.batch_database_codes is None):
            raise TypeError(
                'FishLoss regresses the codes to fixed label codes: use '
                "model.database=dict(type='LabelCodeDatabase') with it")
        if network is None:
            raise TypeError(
                'FishLoss trains on the peak-erased images too: it needs the '
                'network (the retriever passes it to a loss with '
                'needs_network)')
        labels = view.labels if view.labels.dim() == 1 else \
            view.labels.argmax(1)
        thresholds = torch.empty(
            len(inputs), device=inputs.device,
            dtype=inputs.dtype).uniform_(*self.threshold_range)
        erased_logits = network(erase_peaks(inputs, feature_map,
                                            thresholds))['logits']
        targets = view.batch_database_codes.to(relaxed_codes.dtype)
        return dict(
            loss_cls=self.cls_weight * F.cross_entropy(logits, labels),
            loss_code=self.code_weight * F.mse_loss(relaxed_codes, targets),
            loss_cls_erased=self.erased_weight * F.cross_entropy(
                erased_logits, labels))
