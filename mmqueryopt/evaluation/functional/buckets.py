"""Hamming-distance buckets of a chunk of queries.

With ``nbits``-bit codes a query sees at most ``nbits + 1`` distinct distances,
so every ranking metric follows from how many (relevant) database items fall
at each distance and, for the index tie order, where each relevant item sits
inside its bucket. Both come from a matrix product, a histogram and a prefix
sum per pass over the pairs instead of a sort per query.
"""
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

_INT32_KEY_LIMIT = 2**31


class Buckets(NamedTuple):
    """Distance histograms of ``q`` queries, and ranks of their relevant items.

    The ``hit_*`` tensors have one entry per (query, relevant item) pair,
    sorted by query then rank; they are None unless index ranks were asked.
    """
    items: torch.Tensor  # (q, nbits + 1) int64, items at each distance
    relevant: torch.Tensor  # (q, nbits + 1) int64, relevant items at each
    hit_query: Optional[torch.Tensor] = None  # (M,) query row in the chunk
    hit_rank: Optional[torch.Tensor] = None  # (M,) 1-based rank
    hit_precision: Optional[torch.Tensor] = None  # (M,) float64 precision


def index_stride(most_hits):
    """Key stride of index ranks: even, and more than ``most_hits``, the
    most relevant items of a query (an int or an int tensor)."""
    return most_hits + 2 - most_hits % 2


class BucketCounter:
    """Histogram chunks of queries by Hamming distance to one database.

    Each (query, item) pair of a chunk gets the key
    ``row * (nbits + 1) * stride + distance * stride + before``, where
    ``before`` is the number of the query's relevant items with a smaller
    database index and ``stride``, even, exceeds every query's number of
    relevant items (``before = 0`` when index ranks are not asked). As
    ``distance = (nbits - q.b) / 2``, an even stride keeps the arithmetic on
    integers.
    One bincount of the keys and one prefix sum over the bins then give
    everything: the count of a query's items up to a distance, and the rank
    of each relevant item ``j`` when ties are broken by database index (as a
    stable sort ranks them), since the pairs keyed at most ``key(j)`` in
    ``j``'s row are exactly the items closer than ``j`` plus those at ``j``'s
    distance with an index up to ``j``'s.

    The keys are made and counted in passes of about ``pass_pairs`` pairs,
    which keeps their buffers in cache on a CPU: one matrix product of the
    {-1, +1} codes (int8 on a CPU) and integer arithmetic after it.

    Args:
        database_signs (torch.Tensor): ``(D, nbits)`` codes in {-1, +1}.
        pass_pairs (int): (query, item) pairs per pass.
        integer_products (bool, optional): int8 products (else float32).
            Defaults to None: int8 on a CPU, float32 on a GPU.
    """

    def __init__(self,
                 database_signs: torch.Tensor,
                 pass_pairs: int,
                 integer_products: Optional[bool] = None):
        self.num_items, self.nbits = database_signs.shape
        self.num_bins = self.nbits + 1
        self.pass_rows = max(1, pass_pairs // self.num_items)
        # q.b of {-1, +1} codes is an integer: on a CPU an int8 product gives
        # it as int32 at a fraction of float32's cost (and no conversion);
        # float32 is exact on a GPU, TF32 included. The int8 product gets
        # zero bits up to a multiple of 8 and plain strides, without which
        # torch 2.14's CPU kernel returns garbage (e.g. for one bit).
        if integer_products is None:
            integer_products = not database_signs.is_cuda
        self._int8 = integer_products
        self._padding = -self.nbits % 8 if self._int8 else 0
        self._database_t = database_signs.new_zeros(
            (self.nbits + self._padding, self.num_items),
            dtype=torch.int8 if self._int8 else torch.float32)
        self._database_t[:self.nbits] = database_signs.T
        self._workspaces = {}

    def _workspace(self, name: str, shape: tuple,
                   dtype: torch.dtype) -> torch.Tensor:
        """A reused buffer: fresh allocations of a pass's size would cost
        about as much as the work done in them (page faults)."""
        numel = math.prod(shape)
        buffer = self._workspaces.get((name, dtype))
        if buffer is None or buffer.numel() < numel:
            buffer = self._database_t.new_empty(numel, dtype=dtype)
            self._workspaces[(name, dtype)] = buffer
        return buffer[:numel].view(shape)

    def _products(self, queries: torch.Tensor,
                  out: torch.Tensor) -> torch.Tensor:
        """``(q, D)`` ``q.b`` of padded {-1, +1} codes, into ``out``."""
        if self._int8:
            return torch._int_mm(queries, self._database_t, out=out)
        return torch.mm(queries, self._database_t, out=out)

    def _before_table(self, groups: torch.Tensor, hit_query: torch.Tensor,
                      hit_item: torch.Tensor) -> tuple:
        """Running counts of relevant items along the database, per group.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``(G, D)`` table whose row g
            holds, at each index, the number of group g's relevant items
            before it; ``(q,)`` table row of each query.
        """
        unique_groups, query_group = torch.unique(groups, return_inverse=True)
        table = self._workspace('table',
                                (len(unique_groups), self.num_items + 1),
                                torch.int32).zero_()
        # Queries of a group list the same items: writing 1 again is a no-op.
        table[query_group[hit_query], hit_item + 1] = 1
        return table.cumsum_(1)[:, :-1], query_group

    def count(self,
              query_signs: torch.Tensor,
              hit_query: torch.Tensor,
              hit_item: torch.Tensor,
              index_ranks: bool,
              groups: Optional[torch.Tensor] = None) -> Buckets:
        """Histogram ``q`` queries; rank their relevant items if asked.

        Args:
            query_signs (torch.Tensor): ``(q, nbits)`` codes in {-1, +1}.
            hit_query (torch.Tensor): ``(M,)`` query row of each relevant
                pair, sorted by query then item.
            hit_item (torch.Tensor): ``(M,)`` database index of each pair.
            index_ranks (bool): Rank relevant items by (distance, index).
            groups (torch.Tensor, optional): ``(q,)`` ids; queries with the
                same id have the same relevant items, which saves work.
                Defaults to None (every query its own group).

        Returns:
            Buckets: Histograms, plus ranks and precisions when asked.
        """
        num_queries = query_signs.shape[0]
        hits_per_query = torch.bincount(hit_query, minlength=num_queries)
        most_hits = int(hits_per_query.max()) if index_ranks and len(
            hit_query) else 0
        stride = index_stride(most_hits)
        before = None
        if index_ranks:
            before = self._before_table(
                torch.arange(num_queries, device=hit_query.device)
                if groups is None else groups, hit_query, hit_item)
        within, hit_distance, hit_rank = self._count_passes(
            query_signs, stride, before, hit_query, hit_item)
        items = torch.diff(
            within, dim=1, prepend=within.new_zeros(num_queries, 1))
        relevant = torch.bincount(
            hit_query * self.num_bins + hit_distance,
            minlength=num_queries * self.num_bins).view(
                num_queries, self.num_bins)
        if not index_ranks:
            return Buckets(items, relevant)
        order = torch.argsort(hit_query * (self.num_items + 1) + hit_rank)
        hit_query, hit_rank = hit_query[order], hit_rank[order]
        first_hit = hits_per_query.cumsum(0) - hits_per_query
        hits_so_far = (
            torch.arange(hit_query.numel(), device=hit_query.device) -
            first_hit[hit_query] + 1)
        return Buckets(items, relevant, hit_query, hit_rank,
                       hits_so_far.double() / hit_rank)

    def _count_passes(self, query_signs: torch.Tensor, stride: int,
                      before: Optional[tuple], hit_query: torch.Tensor,
                      hit_item: torch.Tensor) -> tuple:
        """Make and count the keys a pass at a time.

        Args:
            stride (int): Even, more than any query's relevant items.
            before (tuple, optional): :meth:`_before_table` for index ranks.

        Returns:
            tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ``(q, nbits +
            1)`` items at each distance or closer; ``(M,)`` distance and
            ``(M,)`` rank (ties by index; meaningless without ``before``)
            of each relevant pair.
        """
        num_queries = query_signs.shape[0]
        pass_rows = min(self.pass_rows, num_queries)
        row_bins = self.num_bins * stride
        # Keys are numbered within a pass.
        key_dtype = torch.int32 if (pass_rows * row_bins <
                                    _INT32_KEY_LIMIT) else torch.int64
        device = hit_query.device
        # key = row * row_bins + stride / 2 * (nbits - q.b) + before
        row_offset = (torch.arange(pass_rows, device=device) * row_bins +
                      stride // 2 * self.nbits).unsqueeze(1).to(key_dtype)
        queries = F.pad(query_signs.to(self._database_t.dtype),
                        (0, self._padding))
        products_buffer = self._workspace(
            'products', (pass_rows, self.num_items),
            torch.int32 if self._int8 else torch.float32)
        keys_buffer = None if products_buffer.dtype == key_dtype else \
            self._workspace('keys', products_buffer.shape, key_dtype)
        if before is not None:
            table = before[0].to(key_dtype)
            before_buffer = self._workspace('before', products_buffer.shape,
                                            key_dtype)

        pass_row = torch.arange(num_queries, device=device) % pass_rows
        hit_pass_row = pass_row[hit_query]
        hit_pair = hit_pass_row * self.num_items + hit_item
        pass_starts = range(0, num_queries, pass_rows)
        hit_starts = torch.searchsorted(
            hit_query - hit_pass_row,
            torch.tensor(list(pass_starts) + [num_queries],
                         device=device)).tolist()
        within = hit_query.new_empty(num_queries, self.num_bins)
        hit_keys, hit_ranks = [], []
        for i, start in enumerate(pass_starts):
            rows = slice(start, start + pass_rows)
            num_rows = min(pass_rows, num_queries - start)
            keys = self._products(queries[rows], products_buffer[:num_rows])
            if keys_buffer is not None:
                keys = keys_buffer[:num_rows].copy_(keys)
            offset = row_offset[:num_rows]
            if before is not None:
                offset = torch.index_select(
                    table, 0, before[1][rows],
                    out=before_buffer[:num_rows]).add_(offset)
            keys = torch.add(
                offset, keys, alpha=-(stride // 2), out=keys).view(-1)
            at_most = torch.bincount(
                keys, minlength=num_rows * row_bins).cumsum_(0)
            within[rows] = at_most.view(-1, self.num_bins, stride)[:, :, -1]
            key = keys.index_select(
                0, hit_pair[hit_starts[i]:hit_starts[i + 1]])
            hit_keys.append(key)
            hit_ranks.append(at_most.index_select(0, key))
        # Row r of a pass comes after the r * D pairs of the rows before it.
        within -= (pass_row * self.num_items).unsqueeze(1)
        hit_distance = torch.div(
            torch.cat(hit_keys) - hit_pass_row * row_bins,
            stride,
            rounding_mode='floor')
        hit_rank = torch.cat(hit_ranks) - hit_pass_row * self.num_items
        return within, hit_distance, hit_rank
