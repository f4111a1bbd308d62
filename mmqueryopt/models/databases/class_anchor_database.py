"""ADSH's learned database plus ExchNet's class anchors: per-class means of
the part features, recomputed between rounds, which training exchanges
part features with."""
from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import Tensor

from mmqueryopt.registry import MODELS
from .adsh_database import ADSHDatabase
from .base import DatabaseView


@dataclass
class ClassAnchorView(DatabaseView):
    """:class:`DatabaseView` with the anchors of the batch's classes.

    Attributes:
        class_anchors (Tensor | None): (n, M, C'), the anchors of each
            image's class; None until anchors have been computed.
    """
    class_anchors: Optional[Tensor] = None


@MODELS.register_module()
class ClassAnchorDatabase(ADSHDatabase):
    """:class:`ADSHDatabase` (B, U, labels, B's solver) that also keeps
    class anchors, and hands the batch's in every view.

    ``class_anchors`` is a buffer (num_classes, M, C'), empty until
    :meth:`set_class_anchors` (called by ``ClassAnchorHook`` between rounds)
    or a checkpoint fills it, so that checkpoints and resumed runs carry the
    anchors, and the retriever keeps DDP's buffer broadcast off it like the
    other database state (the hook gives every rank the same means).

    Args:
        gamma (float): As :class:`ADSHDatabase`; ExchNet's reference runs 0
            (no quantisation term, B solved with Q = L S^T U).
        similarity (str): As :class:`ADSHDatabase`.
        code_width (int): As :class:`ADSHDatabase`.
    """

    def __init__(self,
                 gamma: float = 0.0,
                 similarity: str = 'soft',
                 code_width: int = 0):
        super().__init__(gamma=gamma, similarity=similarity,
                         code_width=code_width)
        self.register_buffer('class_anchors', torch.zeros(0, 0, 0))

    @property
    def has_anchors(self) -> bool:
        """bool: Whether anchors have been computed (or loaded)."""
        return self.class_anchors.numel() > 0

    @torch.no_grad()
    def set_class_anchors(self, anchors: Tensor) -> None:
        """Store the class anchors.

        Args:
            anchors (Tensor): (num_classes, M, C') class means of the part
                features, in dataset class order.
        """
        if anchors.dim() != 3:
            raise ValueError(f'class anchors must be (num_classes, M, C\'), '
                             f'got {tuple(anchors.shape)}')
        self.class_anchors = anchors.to(device=self.codes.device,
                                        dtype=self.codes.dtype)

    def batch_view(self, batch_indices: Tensor,
                   batch_labels: Tensor) -> ClassAnchorView:
        """The base view of the batch, plus its classes' anchors.

        Args:
            batch_indices (Tensor): (n,) the batch's database rows.
            batch_labels (Tensor): (n,) class ids.

        Returns:
            ClassAnchorView: ``class_anchors`` (n, M, C') or None.
        """
        base = super().batch_view(batch_indices, batch_labels)
        anchors = None
        if self.has_anchors:
            if batch_labels.dim() != 1:
                raise ValueError(
                    'class anchors need one class id per image, got labels '
                    f'of shape {tuple(batch_labels.shape)}')
            anchors = self.class_anchors[batch_labels]
        return ClassAnchorView(
            **{field.name: getattr(base, field.name)
               for field in fields(base)},
            class_anchors=anchors)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopt a checkpoint's anchors whatever their number of classes (a
        checkpoint written before any were computed holds an empty one)."""
        saved = state_dict.get(prefix + 'class_anchors')
        if saved is not None:
            self.class_anchors = torch.empty_like(
                saved, device=self.class_anchors.device,
                dtype=self.class_anchors.dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
