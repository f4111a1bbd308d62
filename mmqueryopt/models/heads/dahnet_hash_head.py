"""DAHNet's hash head: SEMICON's global/local codes, and classifiers on the
global and the part features that only training uses."""
from typing import Dict, Union

from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from .global_local_hash_head import NUM_PARTS, GlobalLocalHashHead


@MODELS.register_module()
class DAHNetHashHead(GlobalLocalHashHead):
    """:class:`GlobalLocalHashHead`'s codes
    ``tanh([W_G g ; W_1 l_1 ; W_2 l_2 ; W_3 l_3])`` plus DAHNet's
    train-only classifiers: ``cls`` (Linear d -> C) on g and one
    ``part_cls`` (Linear d -> C) shared by l_1, l_2, l_3 (PyTorch's default
    Linear init, as the reference).

    Args:
        code_length (int): Bits k (split as SEMICON's).
        num_classes (int): C, the training set's classes.
        in_channels (int): Width d of each feature. Defaults to 2048.
        init_cfg (dict, optional): MMEngine init config.

    Returns (forward):
        Tensor | dict[str, Tensor]: (B, k) relaxed codes in eval mode; in
        training a dict with ``relaxed_codes`` (B, k), ``global_logits``
        (B, C) and ``part_logits`` (B, 3, C).
    """

    def __init__(self, code_length: int, num_classes: int,
                 in_channels: int = 2048, init_cfg=None):
        if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                or num_classes < 1):
            raise ModelConfigError(
                f'model.head.num_classes (the training set\'s classes) must '
                f'be a positive int, got {num_classes!r}')
        super().__init__(code_length, in_channels, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.cls = nn.Linear(in_channels, num_classes)
        self.part_cls = nn.Linear(in_channels, num_classes)

    def forward(self, feats: Tensor) -> Union[Tensor, Dict[str, Tensor]]:
        """Relaxed codes, and in training the class logits.

        Args:
            feats (Tensor): (B, 4, d): g, then l_1, l_2, l_3.

        Returns:
            Tensor | dict[str, Tensor]: See the class docstring.
        """
        codes = super().forward(feats)
        if not self.training:
            return codes
        return dict(relaxed_codes=codes,
                    global_logits=self.cls(feats[:, 0]),
                    part_logits=self.part_cls(feats[:, 1:1 + NUM_PARTS]))
