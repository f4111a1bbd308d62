"""Hamming-distance buckets of a chunk of queries.

With ``nbits``-bit codes a query sees at most ``nbits + 1`` distinct distances,
so every ranking metric follows from how many (relevant) database items fall
at each distance and, for the index tie order, where each relevant item sits
inside its bucket. Both come from one matrix product and one histogram per
chunk instead of a sort per query.
"""
import math
from typing import NamedTuple, Optional

import torch

# Keys, and the half-integers on the way to them, are exact in float32 below
# 2**23.
_KEY_LIMIT = 2**23
# Measured cost of one element of the in-block scan relative to one element
# of the per-block prefix sums (CPU); it sets the balanced block size.
_SCAN_COST = 2.0


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


def balanced_block_size(num_items: int, num_bins: int,
                        hits_per_query: float) -> int:
    """Block size that balances the two costs of index ranks.

    Per query, the per-block prefix sums cost ``D / block * num_bins`` and the
    scan of each relevant item's own block ``hits * block * _SCAN_COST``;
    their sum is smallest at the square root.
    """
    if hits_per_query <= 0:
        return num_items
    block = math.sqrt(num_items * num_bins / (hits_per_query * _SCAN_COST))
    return int(min(max(round(block), 1), num_items))


class BucketCounter:
    """Histogram chunks of queries by Hamming distance to one database.

    Each (query, item) pair gets an int32 key
    ``(row * (nbits + 1) + distance) * num_blocks + block``, so one bincount
    gives per-block histograms of the whole chunk. Keys come from one matrix
    product of the {-1, +1} codes plus a bias: exact in float32 (also with
    TF32), and on CPU measured about as fast as numpy XOR + popcount of
    packed codes followed by the same arithmetic.

    With a ``block_size``, the rank of each relevant item when ties are broken
    by database index (as a stable sort by distance ranks it) is also found:
    ``(items at smaller distance) + (items at the same distance and smaller
    index) + 1``. The middle term is a per-distance running count along the
    database: prefix sums of the per-block histograms plus a scan of the
    item's own block.

    Args:
        database_signs (torch.Tensor): ``(D, nbits)`` codes in {-1, +1}.
        chunk_size (int): Most queries per chunk; workspaces are sized by it.
        block_size (int, optional): Database items per block when index ranks
            are wanted (see :func:`balanced_block_size`). Defaults to None
            (histograms only).
    """

    def __init__(self,
                 database_signs: torch.Tensor,
                 chunk_size: int,
                 block_size: Optional[int] = None):
        self.num_items, self.nbits = database_signs.shape
        self.chunk_size = chunk_size
        self.num_bins = self.nbits + 1
        self.block_size = block_size or self.num_items
        self.num_blocks = -(-self.num_items // self.block_size)
        self.row_bins = self.num_bins * self.num_blocks
        if chunk_size * self.row_bins >= _KEY_LIMIT:
            raise ValueError(
                f'chunk_size={chunk_size} is above max_chunk_size() = '
                f'{max_chunk_size(self.num_items, self.nbits, block_size)}')
        device = database_signs.device
        self.padding = -self.num_items % self.block_size
        padded = self.num_items + self.padding
        # Padding columns (a partial last block) are sent to the last block
        # at distance nbits, after every real item; their count is taken off.
        row_start = torch.arange(
            chunk_size, device=device).unsqueeze(1) * self.row_bins
        self._padding_keys = (row_start + self.row_bins - 1).int().expand(
            chunk_size, self.padding)
        item_block = torch.arange(padded, device=device) // self.block_size
        # Reused across chunks: fresh allocations of this size would cost
        # about as much as the work done in them.
        self._keys = torch.empty(
            chunk_size, padded, device=device, dtype=torch.int32)
        # key = bias - num_blocks / 2 * q.b, as distance = (nbits - q.b) / 2
        self._bias = (row_start + item_block +
                      self.num_blocks * self.nbits / 2).float()
        self._database_t = torch.cat([
            database_signs.float(),
            database_signs.new_zeros(
                self.padding, self.nbits, dtype=torch.float32)
        ]).T.contiguous()
        self._products = torch.empty(chunk_size, padded, device=device)

    def keys(self, query_signs: torch.Tensor) -> torch.Tensor:
        """``(q, padded D)`` int32 keys of the pairs (see the class doc)."""
        num_queries = query_signs.shape[0]
        keys = self._keys[:num_queries]
        products = self._products[:num_queries]
        torch.addmm(
            self._bias[:num_queries],
            query_signs.float(),
            self._database_t,
            alpha=-0.5 * self.num_blocks,
            out=products)
        keys.copy_(products)
        keys[:, self.num_items:] = self._padding_keys[:num_queries]
        return keys

    def count(self, query_signs: torch.Tensor, hit_query: torch.Tensor,
              hit_item: torch.Tensor, index_ranks: bool) -> Buckets:
        """Histogram ``q`` queries; rank their relevant items if asked.

        Args:
            query_signs (torch.Tensor): ``(q, nbits)`` codes in {-1, +1}.
            hit_query (torch.Tensor): ``(M,)`` query row of each relevant
                pair, sorted by query then item.
            hit_item (torch.Tensor): ``(M,)`` database index of each pair.
            index_ranks (bool): Rank relevant items (needs ``block_size``).

        Returns:
            Buckets: Histograms, plus ranks and precisions when asked.
        """
        num_queries = query_signs.shape[0]
        keys = self.keys(query_signs)
        block_counts = torch.bincount(
            keys.view(-1), minlength=num_queries * self.row_bins)
        # Inclusive prefix sums over blocks; the last block holds the totals.
        prefix = block_counts.view(-1, self.num_blocks).cumsum(1)
        items = prefix[:, -1].view(num_queries, self.num_bins).clone()
        items[:, -1] -= self.padding

        hit_key = keys.view(-1).index_select(
            0, hit_query * keys.shape[1] + hit_item).long()
        hit_distance = hit_key // self.num_blocks % self.num_bins
        relevant = torch.bincount(
            hit_query * self.num_bins + hit_distance,
            minlength=num_queries * self.num_bins).view(
                num_queries, self.num_bins)
        if not index_ranks:
            return Buckets(items, relevant)

        hit_rank = self._index_ranks(keys, block_counts, prefix, items,
                                     hit_query, hit_item, hit_key)
        return Buckets(
            items, relevant,
            *_hit_precisions(relevant, hit_query, hit_rank, self.num_items))

    def _index_ranks(self, keys, block_counts, prefix, items, hit_query,
                     hit_item, hit_key) -> torch.Tensor:
        """``(M,)`` ranks of the hits, ties in database index order."""
        in_earlier_blocks = (
            prefix.view(-1).index_select(0, hit_key) -
            block_counts.index_select(0, hit_key))
        hit_block = hit_item // self.block_size
        offset = hit_item - hit_block * self.block_size
        own_block = keys.view(-1, self.block_size).index_select(
            0, hit_query * self.num_blocks + hit_block)
        window = torch.arange(self.block_size, device=keys.device)
        in_block_before = ((own_block == hit_key.unsqueeze(1))
                           & (window < offset.unsqueeze(1))).sum(1)
        hit_distance = hit_key // self.num_blocks % self.num_bins
        closer = (items.cumsum(1) - items).view(-1).index_select(
            0, hit_query * self.num_bins + hit_distance)
        return closer + in_earlier_blocks + in_block_before + 1


def _hit_precisions(relevant: torch.Tensor, hit_query: torch.Tensor,
                    hit_rank: torch.Tensor, num_items: int):
    """Order hits by (query, rank); add the precision at each hit."""
    order = torch.argsort(hit_query * (num_items + 1) + hit_rank)
    hit_query, hit_rank = hit_query[order], hit_rank[order]
    hits_per_query = relevant.sum(1)
    first_hit = hits_per_query.cumsum(0) - hits_per_query
    hits_so_far = (
        torch.arange(hit_query.numel(), device=hit_query.device) -
        first_hit[hit_query] + 1)
    return hit_query, hit_rank, hits_so_far.double() / hit_rank


def max_chunk_size(num_items: int, nbits: int,
                   block_size: Optional[int]) -> int:
    """Most queries per chunk whose keys stay exact in float32."""
    block_size = block_size or num_items
    row_bins = (nbits + 1) * -(-num_items // block_size)
    return max(1, (_KEY_LIMIT - 1) // row_bins)
