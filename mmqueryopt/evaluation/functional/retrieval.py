"""One-pass retrieval evaluation of binary codes, and single-metric wrappers.

Ranking is by Hamming distance, ascending. Distances are integers in
``0..nbits``, so many database items tie; ``tie_break`` says how a tie is
ordered:

* ``'index'``: by database index, as a stable sort ranks it. Deterministic,
  the default.
* ``'expected'``: the exact expectation over uniformly random orders within
  each tie (closed form, no sampling; see :mod:`.expected`). It does not
  depend on how the database happens to be ordered.

AP@k follows the ADSH / DPSH convention: the mean of the precisions at the
relevant ranks within the top ``k``, i.e. divided by the number of relevant
items retrieved in the top ``k`` (not by all relevant items). A query with no
relevant item in the top ``k`` has AP@k 0. ``topk=None`` means the whole
database, so ``mAP`` is the usual mean average precision.
"""
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch

from .authors import authors_cutoff
from .buckets import BucketCounter, Buckets, index_stride
from .codes import ArrayLike, prepare_codes
from .expected import expected_at_cutoffs, harmonic_numbers
from .labels import Relevance, prepare_labels

TIE_BREAKS = ('index', 'expected')
# Pairs per chunk (metrics are read off a chunk's histograms) and per pass
# (its keys are made and counted a pass at a time), measured fastest on a
# 2-core CPU: passes whose buffers fit in cache, chunks large enough that the
# per-chunk work is small. A GPU wants big launches.
_CPU_CHUNK_PAIRS = 2**23
_CPU_PASS_PAIRS = 2**19
_CUDA_CHUNK_PAIRS = 2**25


def result_key(metric: str, k: Optional[int], tie_break: str) -> str:
    """Key of a cutoff metric in the results, e.g. ``'mAP@100_expected'``.

    Args:
        metric (str): ``'mAP'``, ``'P'``, ``'R'`` or
            ``'num_queries_without_relevant'``.
        k (int | None): Cutoff; None for the whole database.
        tie_break (str): ``'index'`` (no suffix), ``'expected'`` or
            ``'authors'``.
    """
    cutoff = '' if k is None else f'@{k}'
    suffix = '' if tie_break == 'index' else f'_{tie_break}'
    return f'{metric}{cutoff}{suffix}'


def _as_tuple(value, name, allow_none=False) -> tuple:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value, )
    for v in values:
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f'{name} must hold ints; got {value!r}')
    return tuple(v if v is None else int(v) for v in values)


def _check_options(map_topk, precision_k, recall_k, radius, tie_break):
    """Normalise the metric options to tuples and reject bad values."""
    map_topk = _as_tuple(map_topk, 'map_topk', allow_none=True)
    precision_k = _as_tuple(precision_k, 'precision_k')
    recall_k = _as_tuple(recall_k, 'recall_k')
    radius = _as_tuple(radius, 'radius')
    if any(k is not None and k < 1 for k in map_topk + precision_k + recall_k):
        raise ValueError('map_topk, precision_k and recall_k must be >= 1; '
                         f'got {map_topk}, {precision_k}, {recall_k}')
    if any(r < 0 for r in radius):
        raise ValueError(f'radius must be >= 0; got {radius}')
    if isinstance(tie_break, str):
        tie_break = (tie_break, )
    tie_break = tuple(tie_break)
    unknown = set(tie_break) - set(TIE_BREAKS)
    if unknown:
        raise ValueError(f'tie_break must be among {TIE_BREAKS}; got '
                         f'{sorted(unknown)}')
    return map_topk, precision_k, recall_k, radius, tie_break


def _index_at_cutoff(buckets: Buckets, cutoff: int):
    """Per-query AP@k, relevant retrieved and no-hit flag, index tie order.

    ``index_add`` runs through a query's hits in rank order (a plain loop on
    a CPU), so its sums do not depend on the chunk.

    Returns:
        tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ``(q,)`` float64
        each.
    """
    num_queries = buckets.items.shape[0]
    retrieved = (buckets.hit_rank <= cutoff).double()
    zeros = retrieved.new_zeros(num_queries)
    hits = zeros.index_add(0, buckets.hit_query, retrieved)
    precision_sum = zeros.index_add(0, buckets.hit_query,
                                    retrieved * buckets.hit_precision)
    return (precision_sum / hits.clamp(min=1), hits, (hits == 0).double())


def evaluate_retrieval(query_codes: ArrayLike,
                       database_codes: ArrayLike,
                       query_labels: ArrayLike,
                       database_labels: ArrayLike,
                       map_topk: Sequence[Optional[int]] = (None, ),
                       precision_k: Sequence[int] = (),
                       recall_k: Sequence[int] = (),
                       radius: Sequence[int] = (),
                       tie_break: Sequence[str] = ('index', ),
                       pr_curve: bool = False,
                       authors_protocol: bool = False,
                       chunk_size: Optional[int] = None,
                       nbits: Optional[int] = None) -> Dict[str, object]:
    """Compute Hamming-ranking retrieval metrics in one pass.

    Queries are processed in chunks: one matrix product gives the distances
    of a chunk to the whole database, and every metric is read off the
    per-distance counts of that chunk (see :mod:`.buckets`), on the device the
    codes are on. Memory is bounded by the chunk.

    On a CPU the results are bit-identical whatever ``chunk_size`` (and the
    pass size): each query's values come from elementwise arithmetic,
    lookups in whole-database tables and sums taken left to right, none of
    which sees the other queries of its chunk, and the means over queries
    are taken once, at the end. On CUDA the index-order sums are atomic adds
    (``index_add``), so their last bits may vary from run to run.

    Result keys (``<k>``, ``<r>`` are the requested values; ``_expected`` is
    appended for ``tie_break='expected'``, nothing for ``'index'``):

    - ``'mAP'`` (``topk=None``: whole database) / ``'mAP@<k>'``: mean AP.
    - ``'P@<k>'``, ``'R@<k>'``: precision and recall of the top ``k``
      (precision divides by ``min(k, D)``).
    - ``'P@r<r>'``, ``'R@r<r>'``: precision and recall of the items within
      Hamming radius ``r`` (precision 0 when none is); ties do not matter.
    - ``'PR_precision'``, ``'PR_recall'`` (``pr_curve=True``): ``(nbits + 1,)``
      float64 numpy arrays, the same for every radius ``0..nbits``.
    - ``'mAP_authors'`` / ``'mAP@<k>_authors'`` (``authors_protocol=True``):
      the authors' routine, for comparison only: ties in database-index order
      (their GPU sort is stable) and, for ``topk=None``, the last ranked
      database item dropped, i.e. ``'mAP'`` over the first ``D - 1`` ranks;
      ``'mAP@<k>_authors'`` equals ``'mAP@<k>'`` (see :mod:`.authors`).
    - ``'num_queries_without_relevant'`` (int): queries with no relevant item
      in the database; they count as AP 0 and recall 0.
      ``'num_queries_without_relevant@<k>'`` (int; float expected count for
      ``'expected'``): queries with no relevant item in the top ``k``, AP@k 0.

    All metrics are means over all queries, as floats.

    Args:
        query_codes (np.ndarray | torch.Tensor): ``(Q, nbits)`` codes in
            {-1, +1} or {0, 1}, or ``(Q, ceil(nbits / 8))`` uint8 packed by
            ``np.packbits(bits, axis=1)`` when ``nbits`` is given.
        database_codes (np.ndarray | torch.Tensor): ``(D, nbits)`` codes, same
            format as ``query_codes`` and on the same device.
        query_labels (np.ndarray | torch.Tensor): ``(Q,)`` class ids or
            ``(Q, C)`` multi-hot; relevant = at least one shared label.
        database_labels (np.ndarray | torch.Tensor): ``(D,)`` or ``(D, C)``.
        map_topk (Sequence[int | None]): Cutoffs of mAP; None = whole
            database. Defaults to ``(None,)``.
        precision_k (Sequence[int]): Cutoffs of P@k. Defaults to ``()``.
        recall_k (Sequence[int]): Cutoffs of R@k. Defaults to ``()``.
        radius (Sequence[int]): Hamming radii of P@r / R@r. Defaults to ``()``.
        tie_break (Sequence[str]): Tie orders among ``'index'`` and
            ``'expected'``. Defaults to ``('index',)``.
        pr_curve (bool): Add the precision-recall curve over all radii.
            Defaults to False.
        authors_protocol (bool): Add the authors'-routine mAP for each
            ``map_topk``. Defaults to False.
        chunk_size (int, optional): Queries per chunk. Defaults to None
            (about 2**23 pairs per chunk on CPU, 2**25 on CUDA).
        nbits (int, optional): Code length of packed uint8 codes. Defaults to
            None (codes are not packed).

    Returns:
        dict[str, float | int | np.ndarray]: Metrics keyed as listed above.
    """
    query_signs, database_signs = prepare_codes(query_codes, database_codes,
                                                nbits)
    num_queries, num_items = query_signs.shape[0], database_signs.shape[0]
    device = database_signs.device
    labels = prepare_labels(query_labels, database_labels, num_queries,
                            num_items, device)
    map_topk, precision_k, recall_k, radius, tie_break = _check_options(
        map_topk, precision_k, recall_k, radius, tie_break)
    relevance = Relevance(labels)
    index_ranks = (authors_protocol and bool(map_topk)) or (
        'index' in tie_break and bool(map_topk + precision_k + recall_k))
    counter = BucketCounter(
        database_signs, _CUDA_CHUNK_PAIRS
        if database_signs.is_cuda else _CPU_PASS_PAIRS)
    harmonic = harmonic_numbers(num_items, device)
    # Per-query values in query order: the sums do not depend on the chunks.
    per_query: Dict[str, torch.Tensor] = {}

    def add(key, values):
        if key not in per_query:
            per_query[key] = torch.zeros(
                (num_queries, ) + values.shape[1:],
                dtype=torch.float64,
                device=device)
        per_query[key][queries] = values.to(device, torch.float64)

    hits, groups = (relevance.hits_per_query(),
                    relevance.groups()) if index_ranks else (None, None)
    for queries in _query_chunks(num_queries, hits, groups, database_signs,
                                 chunk_size):
        buckets = counter.count(
            query_signs[queries], *relevance.pairs(queries), index_ranks,
            None if groups is None else groups[queries])
        add('num_queries_without_relevant', buckets.relevant.sum(1) == 0)
        for policy in tie_break:
            _add_cutoff_metrics(buckets, policy, map_topk, precision_k,
                                recall_k, harmonic, add)
        _add_radius_metrics(buckets, radius, pr_curve, add)
        if authors_protocol:
            for topk in map_topk:
                add(result_key('mAP', topk, 'authors'),
                    _index_at_cutoff(buckets,
                                     authors_cutoff(topk, num_items))[0])
    return _finalise(per_query)


def _query_chunks(num_queries: int, hits: Optional[torch.Tensor],
                  groups: Optional[torch.Tensor], database_signs: torch.Tensor,
                  chunk_size: Optional[int]) -> Iterator[torch.Tensor]:
    """Indices of the queries of each chunk.

    A chunk holds about ``_*_CHUNK_PAIRS`` (query, item) pairs, or
    ``chunk_size`` queries, and its histogram at most as many bins. For index
    ranks the bins grow with the most relevant items of a query in the chunk,
    so queries go in order of their number of relevant items, and of their
    group, which lets a chunk share work among the group's queries.

    Args:
        num_queries (int): ``Q``.
        hits (torch.Tensor, optional): ``(Q,)`` relevant items of each
            query; None when index ranks are not asked.
        groups (torch.Tensor, optional): ``(Q,)`` group of each query (see
            :meth:`Relevance.groups`); None with ``hits``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1; got {chunk_size}')
    num_items, nbits = database_signs.shape
    pairs = _CUDA_CHUNK_PAIRS if database_signs.is_cuda else _CPU_CHUNK_PAIRS
    if chunk_size is None:
        chunk_size = max(1, pairs // num_items)
    if hits is None:
        order = torch.arange(num_queries, device=database_signs.device)
        for start in range(0, num_queries, chunk_size):
            yield order[start:start + chunk_size]
        return
    order = torch.argsort(hits * (int(groups.max()) + 1) + groups)
    # Histogram bins per query, were it the chunk's last (most hits).
    bins = (nbits + 1) * index_stride(hits[order].cpu())
    start = 0
    while start < num_queries:
        candidates = bins[start:start + chunk_size]
        rows_bins = torch.arange(1, len(candidates) + 1) * candidates
        size = max(1, int((rows_bins <= pairs).sum()))
        yield order[start:start + size]
        start += size


def _add_cutoff_metrics(buckets: Buckets, tie_break: str, map_topk,
                        precision_k, recall_k, harmonic, add) -> None:
    """Add the per-query mAP@k, P@k, R@k of one chunk under one tie order."""
    num_items = int(harmonic.numel()) - 1
    total_relevant = buckets.relevant.sum(1)
    cutoffs = {
        num_items if k is None else min(k, num_items)
        for k in map_topk + precision_k + recall_k
    }
    if tie_break == 'index':
        stats = {k: _index_at_cutoff(buckets, k) for k in cutoffs}
    else:
        stats = expected_at_cutoffs(buckets.items, buckets.relevant,
                                    sorted(cutoffs), harmonic)

    def at(k):
        return stats[num_items if k is None else min(k, num_items)]

    for topk in map_topk:
        ap, _, no_relevant = at(topk)
        add(result_key('mAP', topk, tie_break), ap)
        if topk is not None:
            add(
                result_key('num_queries_without_relevant', topk, tie_break),
                no_relevant)
    for k in precision_k:
        add(result_key('P', k, tie_break), at(k)[1] / min(k, num_items))
    for k in recall_k:
        add(
            result_key('R', k, tie_break),
            at(k)[1] / total_relevant.clamp(min=1))


def _add_radius_metrics(buckets: Buckets, radius: Tuple[int, ...],
                        pr_curve: bool, add) -> None:
    if not radius and not pr_curve:
        return
    within_items = buckets.items.cumsum(1)
    within_relevant = buckets.relevant.cumsum(1).double()
    # Nothing retrieved means no relevant item either, so 0 / 1 = 0.
    precision = within_relevant / within_items.clamp(min=1)
    recall = within_relevant / within_relevant[:, -1:].clamp(min=1)
    nbits = within_items.shape[1] - 1
    for r in radius:
        add(f'P@r{r}', precision[:, min(r, nbits)])
        add(f'R@r{r}', recall[:, min(r, nbits)])
    if pr_curve:
        add('PR_precision', precision)
        add('PR_recall', recall)


def _finalise(per_query: Dict[str, torch.Tensor]) -> Dict[str, object]:
    results: Dict[str, object] = {}
    for key, values in per_query.items():
        total = values.sum(0)
        if key.startswith('num_queries_without_relevant'):
            count = total.item()
            results[key] = count if key.endswith('_expected') else int(count)
        elif key.startswith('PR_'):
            results[key] = (total / len(values)).cpu().numpy()
        else:
            results[key] = total.item() / len(values)
    return results
