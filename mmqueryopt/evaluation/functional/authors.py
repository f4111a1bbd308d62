"""The authors' mAP routine, reproduced for comparison with their numbers.

The reference code (``CalcTopMap`` of DeepHash-pytorch and its descendants,
used by the fine-grained hashing papers) loops over queries::

    hamm = 0.5 * (nbits - np.dot(qB[i], rB.T))  # float32 for sign() codes
    gnd = gnd[np.argsort(hamm)][0:topk]         # called with topk=-1 for "all"
    ...mean of (hits so far / rank) over the relevant ranks in gnd...

Two things differ from :func:`evaluate_retrieval`'s ``mAP``: ``topk=-1``
slices off the last ranked database item (an off-by-one), and ties are in
whatever order numpy's default (unstable) ``argsort`` leaves them, which
depends on the numpy version and CPU. Here the same float32 distances go
through the same ``np.argsort``, a chunk of queries at a time, so the result
matches their loop on the same machine; it costs a full sort per query.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch


def authors_average_precision(
        query_signs: torch.Tensor, database_signs: torch.Tensor,
        relevant: torch.Tensor,
        topks: Sequence[Optional[int]]) -> Dict[Optional[int], np.ndarray]:
    """Per-query AP of the authors' routine for a chunk of queries.

    Args:
        query_signs (torch.Tensor): ``(q, nbits)`` codes in {-1, +1}.
        database_signs (torch.Tensor): ``(D, nbits)`` codes in {-1, +1}.
        relevant (torch.Tensor): ``(q, D)`` bool relevance.
        topks (Sequence[int | None]): Cutoffs; None stands for their
            ``topk=-1``, i.e. all but the last ranked item.

    Returns:
        dict[int | None, np.ndarray]: ``(q,)`` float64 AP for each cutoff.
    """
    query = query_signs.cpu().numpy()
    database = database_signs.cpu().numpy()
    nbits = database.shape[1]
    distance = 0.5 * (nbits - query @ database.T)
    order = np.argsort(distance, axis=1)
    ranked_relevant = np.take_along_axis(relevant.cpu().numpy(), order, 1)
    hits_so_far = ranked_relevant.cumsum(1)
    precision = hits_so_far / np.arange(1, distance.shape[1] + 1)
    precision_sum = np.where(ranked_relevant, precision, 0.).cumsum(1)
    average_precision = {}
    for topk in topks:
        last = distance.shape[1] - 2 if topk is None else min(
            topk, distance.shape[1]) - 1
        if last < 0:
            average_precision[topk] = np.zeros(len(distance))
            continue
        hits = hits_so_far[:, last]
        average_precision[topk] = np.where(
            hits > 0, precision_sum[:, last] / np.maximum(hits, 1), 0.)
    return average_precision
