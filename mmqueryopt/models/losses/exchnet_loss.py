"""ExchNet's loss as aassxun/DSH_Analysis runs it (``models/exchnet_loss.py``
with ``adsh_exchnet.py``'s weights): ADSH's hash term, the parts' spatial
and channel diversity terms, and the alignment of the parts to their class
anchors once the feature exchange is on.

With p_i a part's distribution and H(p, q) = ||sqrt(p) - sqrt(q)||_2 /
sqrt(2) the Hellinger distance, d = the mean of H over the C(M, 2) part
pairs of an image, n images:

- spatial = sum_images (1 - d(spatial distributions)) / n;
- channel = sum_images relu(margin - d(channel distributions)) / n;
- align = ||P - A||_F / n over the whole batch (not squared), P the
  (exchanged) part features (n, M, C'), A the anchors of each image's class.

The reference adds no quantisation term: with ``model.database=dict(type=
'ADSHDatabase', gamma=0.0, ...)`` ADSH's ``loss_quant`` is 0 and the
database solves B with Q = L S^T U, the reference's ``solve_dcc_exch``.
"""
from typing import Dict

import torch
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases import DatabaseView
from .adsh_loss import ADSHLoss

_NEEDED = ('part_feats', 'spatial_dists', 'channel_dists')
_OPTIONAL = ('anchor_feats', 'inputs')


def mean_pairwise_hellinger(dists: Tensor) -> Tensor:
    """Mean Hellinger distance over the pairs of an image's distributions.

    Args:
        dists (Tensor): (n, M, N), M >= 2 distributions over N outcomes.

    Returns:
        Tensor: (n,) in [0, 1].
    """
    num = dists.size(1)
    first, second = torch.triu_indices(num, num, offset=1,
                                       device=dists.device)
    roots = dists.sqrt()
    distances = (roots[:, first] - roots[:, second]).norm(dim=2)
    return distances.mean(dim=1) / 2**0.5


@MODELS.register_module()
class ExchNetLoss(ADSHLoss):
    """ADSH's loss plus ExchNet's diversity and alignment terms.

    ADSH's gamma and similarity are the database's (``model.database``);
    the reference runs gamma 0 (no quantisation term, B solved without it)
    and the soft similarity. The alignment term counts when the head hands
    over ``anchor_feats``, i.e. from :class:`ExchNetNeck`'s
    ``exchange_round`` on; before, ``loss_align`` is 0.

    Args:
        scale_bits (int): Numerator of ADSH's 12/k scaling. Defaults to 12.
        spatial_weight (float): lambda_sp. Defaults to 1 (the trainer's;
            the reference class's default, 0.1, is unused).
        channel_weight (float): lambda_ch. Defaults to 1.
        align_weight (float): lambda_al. Defaults to 1.
        channel_margin (float): t of the channel term. Defaults to 0.4.
    """

    def __init__(self,
                 scale_bits: int = 12,
                 spatial_weight: float = 1.0,
                 channel_weight: float = 1.0,
                 align_weight: float = 1.0,
                 channel_margin: float = 0.4):
        super().__init__(scale_bits)
        self.spatial_weight = spatial_weight
        self.channel_weight = channel_weight
        self.align_weight = align_weight
        self.channel_margin = channel_margin

    def extra_losses(self, relaxed_codes: Tensor, view: DatabaseView,
                     **train_outputs) -> Dict[str, Tensor]:
        """The spatial, channel and alignment terms, weighted.

        Args:
            relaxed_codes (Tensor): F, (n, k).
            view (DatabaseView): Unused beyond ADSH's terms.
            **train_outputs: ``part_feats`` (n, M, C'), ``spatial_dists``
                (n, M, h' w'), ``channel_dists`` (n, M, C') and, from the
                exchange round, ``anchor_feats`` (n, M, C').

        Returns:
            dict[str, Tensor]: ``loss_spatial``, ``loss_channel`` and
            ``loss_align``, scalars.
        """
        missing = [key for key in _NEEDED if key not in train_outputs]
        unused = sorted(set(train_outputs) - set(_NEEDED) - set(_OPTIONAL))
        if missing or unused:
            raise TypeError(
                f'ExchNetLoss needs the head outputs {list(_NEEDED)} (and '
                f"'anchor_feats' from the exchange round), got "
                f'{sorted(train_outputs)}: pair it with ExchNetNeck and '
                f'ExchNetHashHead')
        dtype = relaxed_codes.dtype
        num = relaxed_codes.size(0)
        spatial = (1 - mean_pairwise_hellinger(
            train_outputs['spatial_dists'].to(dtype))).sum() / num
        channel = (self.channel_margin - mean_pairwise_hellinger(
            train_outputs['channel_dists'].to(dtype))).relu().sum() / num
        anchors = train_outputs.get('anchor_feats')
        if anchors is None:
            align = relaxed_codes.new_zeros(())
        else:
            parts = train_outputs['part_feats'].to(dtype)
            align = (parts - anchors.to(dtype)).norm() / num
        return dict(loss_spatial=self.spatial_weight * spatial,
                    loss_channel=self.channel_weight * channel,
                    loss_align=self.align_weight * align)
