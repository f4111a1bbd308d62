"""ExchNet's part neck (Cui et al., ECCV 2020, as aassxun/DSH_Analysis runs
it): A2-Net's attention tower with four part maps, the local and global
layer4 copies, the part features' spatial and channel distributions for the
diversity losses, and the exchange of part features with class anchors
late in training."""
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..databases.base import DatabaseView
from .attribute_attention_neck import AttributeAttentionNeck, _last


@MODELS.register_module()
class ExchNetNeck(AttributeAttentionNeck):
    """Part features of :class:`AttributeAttentionNeck` with ``M`` parts,
    and ExchNet's feature exchange.

    Part ``i`` of an image is the ``local_refiner``'s map of ``A[:, i] * T``
    (B, C', h', w'); its average-pooled vector (B, C') is the part feature.
    Besides the concatenated feature [part 1, ..., part M, global] the neck
    gives, for the loss, each part's spatial distribution (softmax over the
    h' * w' positions of the channel mean of its map) and channel
    distribution (softmax over the C' channels of its pooled vector).

    Class anchors are the class means of the part features over the
    training set; ``ClassAnchorHook`` computes them after every round ``r``
    with ``r + 1 >= exchange_round`` (reading ``exchange_round`` here: the
    reference's ``align_step``, 35 of its 40 iterations) and the database
    (:class:`ClassAnchorDatabase`) keeps them. From the 0-based round
    ``exchange_round`` on, a training batch (the retriever passes ``batch``,
    the database's view with the round and the anchors of each image's
    class) replaces each part feature of each image by its class's anchor
    with probability ``exchange_prob`` (independent draws per image and
    part), and hands the loss the batch's anchors for the alignment term.

    Args:
        num_parts (int): Part maps M. Defaults to 4 (the reference's
            ``att_size``).
        exchange_round (int): First 0-based round whose training batches
            exchange parts and align them to the anchors. Defaults to 35
            (the reference's 36th iteration).
        exchange_prob (float): Probability that a part feature is replaced
            by its class anchor. Defaults to 0.5.
        **kwargs: :class:`AttributeAttentionNeck`'s ``in_channels``,
            ``out_channels``, ``refiner_block``, ``num_refiner_blocks``,
            ``refiner_stride``, ``memory_limit``, ``init_cfg``.

    Returns (forward):
        dict[str, Tensor]: ``feats`` (B, (M + 1) * C') the parts (exchanged
        where drawn) then the global feature; in training also
        ``part_feats`` (B, M, C') (exchanged where drawn),
        ``spatial_dists`` (B, M, h' * w'), ``channel_dists`` (B, M, C')
        (of the parts before the exchange), and from the exchange round
        ``anchor_feats`` (B, M, C'), the anchors of each image's class.
    """

    #: The retriever passes the batch's labels and round in training.
    needs_batch = True

    def __init__(self,
                 num_parts: int = 4,
                 exchange_round: int = 35,
                 exchange_prob: float = 0.5,
                 **kwargs):
        if (not isinstance(num_parts, int) or isinstance(num_parts, bool)
                or num_parts < 2):
            raise ValueError(
                f'model.neck.num_parts must be an int >= 2 (the diversity '
                f'losses compare pairs of parts), got {num_parts!r}')
        if (not isinstance(exchange_round, int)
                or isinstance(exchange_round, bool) or exchange_round < 1):
            raise ValueError(
                f'model.neck.exchange_round must be a 0-based round index '
                f'>= 1 (the anchors come from the rounds before it), got '
                f'{exchange_round!r}')
        if not 0.0 <= exchange_prob <= 1.0:
            raise ValueError(f'model.neck.exchange_prob must lie in [0, 1], '
                             f'got {exchange_prob!r}')
        super().__init__(num_attentions=num_parts, **kwargs)
        self.num_parts = num_parts
        self.exchange_round = exchange_round
        self.exchange_prob = exchange_prob

    def part_maps(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Refined maps of the M attended copies of the backbone map
        (:meth:`local_maps`), (B, M, C', h', w')."""
        return self.local_maps(feats)

    def _pool_parts(self, maps: Tensor) -> Tensor:
        """(B, M, C', h', w') -> (B, M, C'), the pool the global path uses."""
        return self.pool(maps.flatten(0, 1)).reshape(*maps.shape[:3])

    def part_features(self, feats: Union[Tensor, Sequence[Tensor]]
                      ) -> Tensor:
        """Pooled part features, as the class anchors average them.

        Args:
            feats (Tensor | tuple[Tensor]): What forward takes.

        Returns:
            Tensor: (B, M, C').
        """
        return self._pool_parts(self.part_maps(feats))

    def exchanges(self, batch: Optional[DatabaseView]) -> bool:
        """Whether a training batch of this round exchanges parts."""
        return (self.training and batch is not None
                and batch.round_index >= self.exchange_round)

    def forward(self,
                feats: Union[Tensor, Sequence[Tensor]],
                batch: Optional[DatabaseView] = None) -> Dict[str, Tensor]:
        """Concatenated feature and, in training, what the loss needs.

        Args:
            feats (Tensor | tuple[Tensor]): (B, C, h, w), or the backbone's
                tuple whose last map is that.
            batch (DatabaseView, optional): A training batch's labels (B,)
                and round (``HashRetriever`` passes it).

        Returns:
            dict[str, Tensor]: See the class docstring.
        """
        maps = self.part_maps(feats)
        parts = self._pool_parts(maps)
        global_ = self.pool(self.global_refiner(_last(feats))).flatten(1)
        outputs = {}
        if self.training:
            outputs['spatial_dists'] = maps.mean(dim=2).flatten(2).softmax(
                dim=2)
            outputs['channel_dists'] = parts.softmax(dim=2)
        if self.exchanges(batch):
            anchors = self._batch_anchors(batch).to(parts.dtype)
            # 1 keeps the image's own part, 0 takes the anchor: the
            # reference's mask, drawn in float32 whatever the features'
            # dtype, so that a seeded CPU run draws the reference's mask.
            keep = torch.bernoulli(
                torch.full((parts.size(0), self.num_parts, 1),
                           1.0 - self.exchange_prob,
                           device=parts.device)).to(parts.dtype)
            parts = parts * keep + anchors * (1 - keep)
            outputs['anchor_feats'] = anchors
        if self.training:
            outputs['part_feats'] = parts
        outputs['feats'] = torch.cat([parts.flatten(1), global_], dim=1)
        return outputs

    def _batch_anchors(self, batch: DatabaseView) -> Tensor:
        anchors = getattr(batch, 'class_anchors', None)
        if anchors is None:
            raise RuntimeError(
                f'ExchNet exchanges part features with class anchors from '
                f'round {self.exchange_round} (model.neck.exchange_round), '
                f'but the database holds none: use model.database=dict('
                f"type='ClassAnchorDatabase', ...) and add dict(type="
                f"'ClassAnchorHook') to custom_hooks")
        return anchors
