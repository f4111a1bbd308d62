"""HashNet's loss (Cao et al., ICCV 2017): the pairwise likelihood of DPSH
on tanh(scale * u) codes, similar and dissimilar pairs weighted to count
alike."""
from typing import Dict

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..databases.code_memory_database import CodeMemoryView
from .dpsh_loss import check_no_extra_outputs, pair_products, pairwise_nll


@MODELS.register_module()
class HashNetLoss(nn.Module):
    """HashNet's weighted pairwise loss, as aassxun/DSH_Analysis
    ``hashnet.py`` and swuxyj/DeepHash-pytorch ``HashNet.py`` compute it.

    With h the head's ``tanh(scale * u)`` (:class:`ContinuationHashHead`),
    ``theta = alpha * h U^T`` against the code memory (or ``h h^T``, the
    batch with itself), ``l = log(1 + e^theta) - s theta`` per pair, S1 and
    S0 the numbers of similar and dissimilar pairs and S = S1 + S0, the
    references weight similar pairs by S / S1, dissimilar ones by S / S0
    and divide the sum by S:

        loss_likelihood = sum_{s=1} l / S1 + sum_{s=0} l / S0,

    the mean over similar pairs plus the mean over dissimilar ones (a kind
    that has no pair adds nothing).

    Args:
        alpha (float): Scale of the inner products. Defaults to 0.1.
    """

    def __init__(self, alpha: float = 0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, relaxed_codes: Tensor, view: CodeMemoryView,
                **train_outputs) -> Dict[str, Tensor]:
        """Loss of one batch.

        Args:
            relaxed_codes (Tensor): h, (n, L), in (-1, 1).
            view (CodeMemoryView): S (n, M) and U (M, L), or S (n, n) and
                no U, from a ``CodeMemoryDatabase``.

        Returns:
            dict[str, Tensor]: ``loss_likelihood``.
        """
        check_no_extra_outputs(self, train_outputs)
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            codes = relaxed_codes.to(
                torch.promote_types(relaxed_codes.dtype, torch.float32))
            theta = pair_products(codes, view, self.alpha,
                                  type(self).__name__)
            similar = (view.similarity > 0).to(codes.dtype)
            nll = pairwise_nll(theta, similar)
            # Counts clamped to 1: a kind without pairs sums to 0 (and the
            # host never waits for the device to test a count).
            loss = sum((nll * pairs).sum() / pairs.sum().clamp(min=1)
                       for pairs in (similar, 1 - similar))
        return dict(loss_likelihood=loss)
