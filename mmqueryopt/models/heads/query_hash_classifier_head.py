"""QueryOpt's hash head with a linear classifier on its relaxed codes: the
classification task QueryOpt† (the appendix's Table 5, "trained with
classification") adds; our reconstruction."""
from typing import Dict, Optional, Tuple, Union

from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from .query_hash_head import QueryHashHead


@MODELS.register_module()
class QueryHashHeadWithClassifier(QueryHashHead):
    """:class:`QueryHashHead` plus ``classifier`` = Linear(L, C) on the
    training output, all branches' L relaxed bits: the codes themselves
    must separate the classes linearly, and the auxiliary branches' bits
    take part as they do in ADSH's term. Used in training only: the
    inference codes and their cost are QueryOpt's.

    Args:
        num_classes (int): C, the training set's classes.
        code_length, relaxed_dims, embed_dims, num_heads, ffn_dims,
        dropout, init_cfg: As :class:`QueryHashHead`.

    Returns (forward):
        Tensor | dict[str, Tensor]: in eval mode the relaxed codes
        (B, k); in training ``relaxed_codes`` (B, L) and ``class_logits``
        (B, C).
    """

    def __init__(self,
                 code_length: int,
                 num_classes: int,
                 relaxed_dims: int = 96,
                 embed_dims: int = 384,
                 num_heads: int = 8,
                 ffn_dims: int = 2048,
                 dropout: float = 0.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(code_length, relaxed_dims, embed_dims, num_heads,
                         ffn_dims, dropout, init_cfg)
        if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                or num_classes < 2):
            raise ValueError(f'model.head.num_classes must be an int >= 2, '
                             f'got {num_classes!r}')
        self.classifier = nn.Linear(relaxed_dims, num_classes)

    def forward(self, feats: Tuple[Tensor, Tensor]
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Args:
            feats (tuple[Tensor, Tensor]): neck tokens and position
                embedding, each (B, T, d).
        """
        codes = super().forward(feats)
        if not self.training:
            return codes
        return dict(relaxed_codes=codes, class_logits=self.classifier(codes))
