"""DAHNet's mutual complementary module (MCM): parameter-free mixing of
neighbouring part maps by where they agree and where they differ."""
from typing import List, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor


def agreement_weights(high: Tensor, low: Tensor) -> Tuple[Tensor, Tensor]:
    """Where two maps agree, and where they do not.

    ``s`` = softmax over the h*w positions of the cosine similarity of the
    two maps' channel vectors at each position; ``s_rest`` = softmax of
    ``1 - s``.

    Args:
        high (Tensor): (B, C, h, w), the later part's map.
        low (Tensor): (B, C, h, w), the earlier part's map.

    Returns:
        tuple[Tensor, Tensor]: s and s_rest, (B, 1, h, w) each.
    """
    batch, _, height, width = high.shape
    agree = F.cosine_similarity(high, low, dim=1).reshape(batch, -1)
    agree = agree.softmax(dim=1)
    rest = (1.0 - agree).softmax(dim=1)
    return (agree.reshape(batch, 1, height, width),
            rest.reshape(batch, 1, height, width))


def cross_map_mixing(maps: Sequence[Tensor]) -> List[Tensor]:
    """Each part map plus what its neighbours add, as DAHNet's trainer.

    For each neighbouring pair (low = o_i, high = o_{i+1}) with
    ``s, s_rest = agreement_weights(high, low)``: low receives
    ``high * s_rest`` and high receives ``low * s``; a map with two
    neighbours adds the mean of the two contributions. For three maps:
    ``o1 + o2 s'(o2, o1)``, ``o2 + (o1 s(o2, o1) + o3 s'(o3, o2)) / 2``,
    ``o3 + o2 s(o3, o2)``.

    Args:
        maps (Sequence[Tensor]): P >= 2 maps (B, C, h, w), in part order.

    Returns:
        list[Tensor]: P mixed maps, (B, C, h, w) each.
    """
    if len(maps) < 2:
        raise ValueError(f'cross_map_mixing needs at least 2 maps, got '
                         f'{len(maps)}')
    received = [[] for _ in maps]
    for i, (low, high) in enumerate(zip(maps[:-1], maps[1:])):
        agree, rest = agreement_weights(high, low)
        received[i].append(high * rest)
        received[i + 1].append(low * agree)
    mixed = []
    for part, extra in zip(maps, received):
        mixed.append(part + (extra[0] if len(extra) == 1 else 0.5 *
                             (extra[0] + extra[1])))
    return mixed
