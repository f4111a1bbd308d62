"""What every hash head provides to :class:`HashRetriever`."""
from typing import Dict, Optional, Union

from mmengine.model import BaseModule
from torch import Tensor

from ..errors import ModelConfigError


class BaseHashHead(BaseModule):
    """The contract of a hash head.

    A head turns the neck's output into relaxed codes in (-1, 1):

    * ``forward(feats)`` returns a (B, k) tensor in eval mode (the codes
      are its signs, ties to +1) and in training either a (B, L) tensor or
      a dict with ``relaxed_codes`` (B, L) and further named tensors that
      its method's loss takes (:meth:`ADSHLoss.extra_losses`).
    * ``attention_maps(feats)`` (optional): (B, M, h, w) maps, each
      non-negative and summing to 1, for the analysis tools.

    Args:
        code_length (int): k, the bits of a code.
        relaxed_dims (int, optional): L, the width of the training output
            (and of ADSH's B): k times the auxiliary branches; None for k.
        init_cfg (dict, optional): MMEngine init config.

    Attributes:
        code_length_param (str): The parameter whose rows are the bits, so
            that a checkpoint of another code length is named as such.
    """
    code_length_param: str = ''

    def __init__(self,
                 code_length: int,
                 relaxed_dims: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if (not isinstance(code_length, int) or isinstance(code_length, bool)
                or code_length < 1):
            raise ModelConfigError(
                f'model.head.code_length must be a positive int, got '
                f'{code_length!r}')
        self.code_length = code_length
        self.relaxed_dims = code_length if relaxed_dims is None else \
            relaxed_dims

    def forward(self, feats) -> Union[Tensor, Dict[str, Tensor]]:
        raise NotImplementedError
