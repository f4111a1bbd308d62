"""HashNet's hash layer (Cao et al., ICCV 2017): one linear layer whose
training output is tanh(scale * u), the scale growing by continuation."""
import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases.base import DatabaseView
from .linear_hash_head import LinearHashHead


@MODELS.register_module()
class ContinuationHashHead(LinearHashHead):
    """``u = fc(x)``; in a training batch ``tanh(scale * u)``, elsewhere u.

    HashNet approaches sign(u) by continuation: the scale is
    ``sqrt(t // step_passes + 1)`` with ``t = round * passes_per_round +
    pass`` the passes trained so far (0-based), read from the batch's
    :class:`~mmqueryopt.models.databases.DatabaseView`. This covers both
    references:

    * aassxun/DSH_Analysis ``hashnet.py``, 40 (or 20) iterations of 30
      epochs: ``sqrt(2 * it + epoch // 15 + 1)`` = ``step_passes=15``
      (1 to sqrt(80)); its 50-iteration rule ``sqrt(it + 1)`` =
      ``step_passes=30``;
    * swuxyj/DeepHash-pytorch ``HashNet.py``, one epoch per round:
      ``sqrt(epoch // 20 + 1)`` = ``step_passes=20``.

    The training output is what the code memory records and the loss
    pairs (the references' ``U[ind] = tanh(scale * u)``). Outside a
    training batch (eval, ``extract_feat``) the head returns u, the
    reference model's output, whose sign is the code.

    Args:
        code_length (int): Bits k.
        in_channels (int): Width of the pooled feature. Defaults to 2048.
        step_passes (int): Passes per continuation step. Defaults to 15
            (DSH_Analysis' 30-pass rounds: two steps a round).
        init_cfg (dict, optional): None keeps PyTorch's default Linear
            initialisation (DSH_Analysis); DeepHash-pytorch's is
            ``dict(type='Normal', layer='Linear', std=0.01, bias=0)``.
    """

    # Gets the batch's view (round, pass) before the forward.
    needs_batch = True

    def __init__(self,
                 code_length: int,
                 in_channels: int = 2048,
                 step_passes: int = 15,
                 init_cfg: Optional[dict] = None):
        super().__init__(code_length, in_channels, activation=None,
                         init_cfg=init_cfg)
        if (not isinstance(step_passes, int) or isinstance(step_passes, bool)
                or step_passes < 1):
            raise ValueError(f'model.head.step_passes must be an int >= 1, '
                             f'got {step_passes!r}')
        self.step_passes = step_passes

    def scale(self, batch: DatabaseView) -> float:
        """The continuation scale of a batch.

        Args:
            batch (DatabaseView): Its round and pass (``round_index``,
                ``num_passes``, ``pass_index``); before the first round
                (``round_index`` -1) as in round 0.

        Returns:
            float: ``sqrt(t // step_passes + 1)``.
        """
        passes = max(batch.round_index, 0) * batch.num_passes + \
            batch.pass_index
        return math.sqrt(passes // self.step_passes + 1)

    def forward(self,
                feats: Union[Tensor, Sequence[Tensor]],
                batch: Optional[DatabaseView] = None) -> Tensor:
        """Relaxed codes of pooled features.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C) or a neck's tuple whose
                last entry is that.
            batch (DatabaseView, optional): Given in training batches.

        Returns:
            Tensor: (B, k): ``tanh(scale * u)`` with a batch, else u.
        """
        u = super().forward(feats)
        if batch is None:
            return u
        return torch.tanh(self.scale(batch) * u)
