"""The authors' mAP routine, reproduced for comparison with their numbers.

The reference code (``CalcTopMap`` of DeepHash-pytorch and its descendants,
used by the fine-grained hashing papers) loops over queries::

    hamm = 0.5 * (nbits - qB[i] @ rB.T)
    gnd = gnd[argsort(hamm)][0:topk]        # called with topk=-1 for "all"
    ...mean of (hits so far / rank) over the relevant ranks in gnd...

The authors run it with ``torch.argsort`` on a GPU, which for more than 4,096
items (every database of the papers) is a stable radix sort: ties come out in
database-index order, as :func:`evaluate_retrieval` ranks them by default. So
their AP@k is our index-order AP@k, and their ``topk=-1`` is our index-order
AP over all but the last ranked item (an off-by-one). Both are read off the
same sort-free buckets as every other metric: no sort, and the same result as
their loop with a stable sort. (For 4,096 items or fewer PyTorch sorts on
another path on the GPU, whose tie order has not been checked.)
"""
from typing import Optional


def authors_cutoff(topk: Optional[int], num_items: int) -> int:
    """How many ranked items the authors' routine keeps.

    Args:
        topk (int | None): A ``map_topk`` entry; None stands for their
            ``topk=-1``.
        num_items (int): Database size ``D``.

    Returns:
        int: ``D - 1`` for None (``gnd[0:-1]``), else ``min(topk, D)``.
    """
    return num_items - 1 if topk is None else min(topk, num_items)
