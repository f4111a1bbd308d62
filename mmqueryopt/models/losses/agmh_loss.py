"""AGMH's training objective: ADSH with the soft similarity plus ADL."""
from typing import Dict

from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView
from .adsh_loss import ADSHLoss


@MODELS.register_module()
class AGMHLoss(ADSHLoss):
    """``loss_hash + loss_quant + loss_adl`` (AGMH code: ``hash + quant +
    0.5 * ADL``), ADL on the SIEA outputs the head hands over as
    ``attended_maps``.

    ADSH's gamma and similarity (the AGMH code's is soft) are the
    database's (``model.database``).

    Args:
        adl (dict): The dispersion term's module. Defaults to
            ``AttentionDispersionLoss`` with ``loss_weight=0.5``.
        **kwargs: ``scale_bits`` of :class:`ADSHLoss`.
    """

    def __init__(self,
                 adl: dict = dict(
                     type='AttentionDispersionLoss', loss_weight=0.5),
                 **kwargs):
        super().__init__(**kwargs)
        self.adl = MODELS.build(adl)

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     attended_maps: Tensor = None,
                     **train_outputs) -> Dict[str, Tensor]:
        """Args:
            relaxed_codes (Tensor): F, (n, k); not used by ADL.
            view (DatabaseView): Not used by ADL.
            attended_maps (Tensor): (n, D, C, H, W), the SIEA outputs.
            **train_outputs: Anything else is an error.

        Returns:
            dict[str, Tensor]: ``loss_adl``, the weighted ADL.
        """
        if attended_maps is None:
            raise KeyError(
                'AGMHLoss needs the head\'s attended_maps (the SIEA outputs): '
                'pair it with AGMHHashHead after AttributeDescriptorNeck')
        super().extra_losses(relaxed_codes, view, **train_outputs)
        return dict(loss_adl=self.adl(attended_maps))
