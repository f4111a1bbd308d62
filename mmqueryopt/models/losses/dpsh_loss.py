"""DPSH's loss (Li, Wang and Kang, IJCAI 2016): the negative log-likelihood
of the pairwise labels given the codes' inner products, plus quantisation.

With theta_ij = c * u_i . U_j and s_ij = 1 for a shared class, the pair's
likelihood is sigmoid(theta)^s (1 - sigmoid(theta))^(1 - s), whose negative
log is ``log(1 + e^theta) - s theta`` (computed as ``log(1 + e^-|theta|) +
max(theta, 0) - s theta``, which does not overflow). HashNet's loss is the
same likelihood, re-weighted (:class:`HashNetLoss`).
"""
from typing import Dict

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..databases.code_memory_database import CodeMemoryView


def pairwise_nll(theta: Tensor, sim: Tensor) -> Tensor:
    """Negative log-likelihood of each pair, ``log(1 + e^theta) - s
    theta``, without overflow.

    Args:
        theta (Tensor): (n, M) scaled inner products.
        sim (Tensor): (n, M) S in {0, 1}.

    Returns:
        Tensor: (n, M).
    """
    return (torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) -
            sim * theta)


def pair_products(codes: Tensor, view: CodeMemoryView, coefficient: float,
                  loss_name: str) -> Tensor:
    """``coefficient * codes U^T`` against the view's code memory, or
    ``coefficient * codes codes^T`` when the batch is paired with itself.

    Args:
        codes (Tensor): (n, L) relaxed codes (with gradient).
        view (CodeMemoryView): From a ``CodeMemoryDatabase``.
        coefficient (float): The scale of the inner products.
        loss_name (str): For the error message.

    Returns:
        Tensor: theta, (n, M) or (n, n), in ``codes``' dtype.

    Raises:
        TypeError: ``view`` is not a code memory's.
    """
    if not isinstance(view, CodeMemoryView):
        raise TypeError(
            f'model.loss {loss_name} pairs the batch with a code memory, '
            f'but model.database gives a {type(view).__name__} (e.g. '
            f"ADSHDatabase's learned B): use model.database=dict(type="
            f"'CodeMemoryDatabase', rows='round' | 'dataset' | 'batch')")
    other = codes if view.memory_codes is None else view.memory_codes.to(
        codes.dtype)
    return coefficient * codes @ other.T


@MODELS.register_module()
class DPSHLoss(nn.Module):
    """DPSH's loss as swuxyj/DeepHash-pytorch ``DPSH.py`` computes it.

    ``loss_likelihood = mean(log(1 + e^theta) - s theta)`` over the n x M
    pairs of the batch and the code memory (``theta = 1/2 u U^T``, the
    memory's unwritten rows counted as dissimilar with theta = 0, as the
    reference's zero-initialised U and Y), and ``loss_quant = alpha *
    mean((u - sign(u))^2)``.

    Args:
        alpha (float): Weight of the quantisation term. Defaults to 0.1.
        inner_product_scale (float): c in theta = c u U^T. Defaults to 0.5.
    """

    def __init__(self, alpha: float = 0.1, inner_product_scale: float = 0.5):
        super().__init__()
        self.alpha = alpha
        self.inner_product_scale = inner_product_scale

    def forward(self, relaxed_codes: Tensor, view: CodeMemoryView,
                **train_outputs) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): u, (n, L), the raw network output.
            view (CodeMemoryView): S (n, M) and U (M, L) from a
                ``CodeMemoryDatabase``.

        Returns:
            dict[str, Tensor]: ``loss_likelihood`` and ``loss_quant``.
        """
        check_no_extra_outputs(self, train_outputs)
        # At least fp32 under AMP: theta reaches L / 2 and its exp is taken.
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            codes = relaxed_codes.to(
                torch.promote_types(relaxed_codes.dtype, torch.float32))
            theta = pair_products(codes, view, self.inner_product_scale,
                                  type(self).__name__)
            loss_likelihood = pairwise_nll(
                theta, view.similarity.to(codes.dtype)).mean()
            # torch.sign, as the reference: a zero output costs nothing.
            loss_quant = self.alpha * (codes - codes.sign()).pow(2).mean()
        return dict(loss_likelihood=loss_likelihood, loss_quant=loss_quant)


def check_no_extra_outputs(loss: nn.Module, train_outputs: dict) -> None:
    """Refuse head outputs a pairwise loss does not use (another method's
    head)."""
    unused = sorted(set(train_outputs) - {'inputs'})
    if unused:
        raise TypeError(
            f'model.loss {type(loss).__name__} got training outputs {unused} '
            f'that it does not use: pair the head with its method\'s loss')
