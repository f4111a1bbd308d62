"""Check labels and list which database items are relevant to which queries.

Labels are class ids ``(N,)`` or multi-hot ``(N, C)``; a database item is
relevant to a query when they share at least one label.
"""
from typing import NamedTuple, Tuple

import torch

from .codes import ArrayLike, as_tensor


class Labels(NamedTuple):
    """Query and database labels of one kind, on the codes' device."""
    query: torch.Tensor  # (Q,) class ids or (Q, C) float32 multi-hot
    database: torch.Tensor  # (D,) class ids or (D, C) float32 multi-hot
    multi_hot: bool


def _label_tensor(labels: ArrayLike, name: str, num_codes: int,
                  codes_name: str, device: torch.device) -> torch.Tensor:
    labels = as_tensor(labels, name).to(device)
    if labels.ndim not in (1, 2):
        raise ValueError(f'{name} must be class ids (N,) or multi-hot (N, C); '
                         f'got shape {tuple(labels.shape)}')
    if labels.shape[0] != num_codes:
        raise ValueError(
            f'{name} has {labels.shape[0]} rows (shape {tuple(labels.shape)}) '
            f'but {codes_name} has {num_codes}')
    if labels.ndim == 2:
        if not ((labels == 0) | (labels == 1)).all():
            raise ValueError(
                f'{name} of shape {tuple(labels.shape)} is read as multi-hot '
                'and must hold only 0 and 1; pass class ids as shape (N,)')
        # Float matmul counts shared labels exactly up to 2**24 classes.
        return labels.float()
    return labels


def prepare_labels(query_labels: ArrayLike, database_labels: ArrayLike,
                   num_queries: int, num_database: int,
                   device: torch.device) -> Labels:
    """Check label shapes against the codes and move labels to ``device``."""
    query = _label_tensor(query_labels, 'query_labels', num_queries,
                          'query_codes', device)
    database = _label_tensor(database_labels, 'database_labels', num_database,
                             'database_codes', device)
    if query.ndim != database.ndim or query.shape[1:] != database.shape[1:]:
        raise ValueError(
            'query_labels and database_labels must be of the same kind (class '
            'ids (N,) or multi-hot (N, C) with the same C); got shapes '
            f'{tuple(query.shape)} and {tuple(database.shape)}')
    return Labels(query, database, query.ndim == 2)


class Relevance:
    """Which database items are relevant to which queries.

    Class ids are grouped once so that a chunk's relevant pairs are listed
    in time proportional to their number, without a ``(q, D)`` comparison.

    Args:
        labels (Labels): Prepared labels.
    """

    def __init__(self, labels: Labels):
        self.labels = labels
        if labels.multi_hot:
            return
        classes, database_class = labels.database.unique(return_inverse=True)
        class_size = torch.bincount(database_class, minlength=len(classes))
        self._items_by_class = torch.argsort(database_class, stable=True)
        self._class_start = class_size.cumsum(0) - class_size
        slot = torch.searchsorted(classes,
                                  labels.query).clamp_(max=len(classes) - 1)
        known = classes[slot] == labels.query
        self._query_slot = slot
        self._query_hits = torch.where(known, class_size[slot], 0)
        # Queries of an unknown class share the empty set of relevant items.
        self._query_group = torch.where(known, slot, len(classes))

    def hits_per_query(self, chunk_pairs: int = 2**24) -> torch.Tensor:
        """``(Q,)`` int64 number of relevant database items of each query.

        Multi-hot labels are compared in chunks of about ``chunk_pairs``
        (query, item) pairs.
        """
        labels = self.labels
        if not labels.multi_hot:
            return self._query_hits
        step = max(1, chunk_pairs // max(1, len(labels.database)))
        return torch.cat([
            self.dense(slice(start, start + step)).sum(1)
            for start in range(0, len(labels.query), step)
        ])

    def groups(self) -> torch.Tensor:
        """``(Q,)`` int64 ids; queries with the same id have the same
        relevant items (same class, or same multi-hot row)."""
        if self.labels.multi_hot:
            return torch.unique(
                self.labels.query, dim=0, return_inverse=True)[1]
        return self._query_group

    def dense(self, queries: slice) -> torch.Tensor:
        """``(q, D)`` bool: query and database item share a label."""
        labels = self.labels
        if labels.multi_hot:
            return labels.query[queries] @ labels.database.T > 0
        return labels.query[queries, None] == labels.database[None, :]

    def pairs(self, queries: slice) -> Tuple[torch.Tensor, torch.Tensor]:
        """Relevant (query row in the chunk, database index) pairs.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``(M,)`` int64 query rows and
            item indices, sorted by query then item index.
        """
        if self.labels.multi_hot:
            return self.dense(queries).nonzero(as_tuple=True)
        hits = self._query_hits[queries]
        query_row = torch.repeat_interleave(
            torch.arange(len(hits), device=hits.device), hits)
        first = (hits.cumsum(0) - hits)[query_row]
        offset = torch.arange(len(query_row), device=hits.device) - first
        start = self._class_start[self._query_slot[queries]][query_row]
        return query_row, self._items_by_class[start + offset]
