"""ADSH's loss (Jiang & Li, AAAI 2018) on a batch, with the authors' scaling.

The network's relaxed codes F are fitted to the database's discrete codes B
(:class:`~mmqueryopt.models.databases.ADSHDatabase`, which also solves B):

    J = ||F B^T - L S||^2 + gamma ||B[omega] - F||^2,

S the batch's target similarity to every database image, L the relaxed bits,
omega the batch's database rows. S, B and gamma come from the database's
view of the batch, so that the loss is a function of its arguments only.
"""
from typing import Dict

import torch
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView


@MODELS.register_module()
class ADSHLoss(nn.Module):
    """ADSH's loss on a batch, with the authors' scaling.

    ``hash = sum((L*S - F B^T)^2) / (n*m) / L * 12`` and
    ``quant = sum((F - B[omega])^2) / (n*m) * gamma / L * 12``; the 12/L
    factor keeps the magnitude of a 12-bit run whatever L is.

    Methods that add terms (A2-Net, AGMH) subclass it and override
    :meth:`extra_losses`, which receives what their head returns besides
    the relaxed codes, and the database's view (e.g. the training round, so
    that a term can start late).

    Args:
        scale_bits (int): The numerator of the 12/L factor. Defaults to 12.
    """

    #: Whether :meth:`extra_losses` needs the batch's images (``inputs``).
    needs_inputs = False

    def __init__(self, scale_bits: int = 12):
        super().__init__()
        self.scale_bits = scale_bits

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     **train_outputs) -> Dict[str, Tensor]:
        """A method's terms beyond ADSH's; plain ADSH has none.

        Args:
            relaxed_codes (Tensor): F, (n, L).
            view (DatabaseView): The database's view of the batch.
            **train_outputs: What the head returned besides the relaxed
                codes, and ``inputs`` (the batch's images) when the loss
                ``needs_inputs``.

        Returns:
            dict[str, Tensor]: Named scalar terms, added to the loss dict.
        """
        unused = sorted(set(train_outputs) - {'inputs'})
        if unused:
            raise TypeError(
                f'{type(self).__name__} got training outputs {unused} that it '
                f'does not use: pair the head with its method\'s loss (e.g. '
                f'A2NetLoss, AGMHLoss)')
        return {}

    def forward(self, relaxed_codes: Tensor, view: DatabaseView,
                **train_outputs) -> Dict[str, Tensor]:
        """Loss terms of one batch.

        Args:
            relaxed_codes (Tensor): F, (n, L).
            view (DatabaseView): S (n, m), B (m, L), B[omega] (n, L) and
                gamma, from the database.
            **train_outputs: Passed to :meth:`extra_losses`.

        Returns:
            dict[str, Tensor]: ``loss_hash`` and ``loss_quant``, scalars,
            and the method's extra terms.
        """
        if view.database_codes is None:
            raise TypeError(
                f'{type(self).__name__} fits the codes to a learned database, '
                f'but model.database holds no codes: use '
                f"dict(type='ADSHDatabase') with it")
        # At least fp32 even under AMP: F B^T reaches L (96), where bf16
        # keeps only ~2 significant digits, and the squared sums exceed
        # fp16's range. A float64 model stays float64.
        with torch.autocast(relaxed_codes.device.type, enabled=False):
            dtype = torch.promote_types(relaxed_codes.dtype, torch.float32)
            relaxed_codes = relaxed_codes.to(dtype)
            database_codes = view.database_codes.to(dtype)
            num_bits = relaxed_codes.size(1)
            sim = view.similarity.to(dtype)
            norm = sim.numel() * num_bits / self.scale_bits
            loss_hash = (num_bits * sim -
                         relaxed_codes @ database_codes.T).pow(2).sum() / norm
            loss_quant = (relaxed_codes -
                          view.batch_database_codes.to(dtype)).pow(
                              2).sum() * view.gamma / norm
        return dict(loss_hash=loss_hash, loss_quant=loss_quant,
                    **self.extra_losses(relaxed_codes, view, **train_outputs))
