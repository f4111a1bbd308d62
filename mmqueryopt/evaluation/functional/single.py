"""Single-metric functions: thin wrappers of :func:`evaluate_retrieval`.

Each takes the arguments of :func:`evaluate_retrieval` it names, with the
same meaning, and returns one float (the curve: two arrays).
"""
from typing import Optional, Tuple

import numpy as np

from .codes import ArrayLike
from .retrieval import evaluate_retrieval, result_key


def mean_average_precision(query_codes: ArrayLike,
                           database_codes: ArrayLike,
                           query_labels: ArrayLike,
                           database_labels: ArrayLike,
                           topk: Optional[int] = None,
                           tie_break: str = 'index',
                           authors_protocol: bool = False,
                           chunk_size: Optional[int] = None,
                           nbits: Optional[int] = None) -> float:
    """mAP (``topk=None``, whole database) or mAP@k of Hamming ranking.

    Arguments as in :func:`evaluate_retrieval`. With ``authors_protocol``
    it returns the authors' routine's number instead (``tie_break`` is then
    ignored: their ties are in database-index order, and ``topk=None``
    drops the last ranked item).

    Returns:
        float: The mean over queries of AP or AP@k.
    """
    results = evaluate_retrieval(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        map_topk=(topk, ),
        tie_break=() if authors_protocol else (tie_break, ),
        authors_protocol=authors_protocol,
        chunk_size=chunk_size,
        nbits=nbits)
    return results[result_key('mAP', topk,
                              'authors' if authors_protocol else tie_break)]


def _cutoff_metric(kind, query_codes, database_codes, query_labels,
                   database_labels, k, tie_break, chunk_size, nbits):
    results = evaluate_retrieval(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        map_topk=(),
        precision_k=(k, ) if kind == 'P' else (),
        recall_k=(k, ) if kind == 'R' else (),
        tie_break=(tie_break, ),
        chunk_size=chunk_size,
        nbits=nbits)
    return results[result_key(kind, k, tie_break)]


def precision_at_k(query_codes: ArrayLike,
                   database_codes: ArrayLike,
                   query_labels: ArrayLike,
                   database_labels: ArrayLike,
                   k: int,
                   tie_break: str = 'index',
                   chunk_size: Optional[int] = None,
                   nbits: Optional[int] = None) -> float:
    """Mean precision of the top ``k`` (``P@k``); see
    :func:`evaluate_retrieval`."""
    return _cutoff_metric('P', query_codes, database_codes, query_labels,
                          database_labels, k, tie_break, chunk_size, nbits)


def recall_at_k(query_codes: ArrayLike,
                database_codes: ArrayLike,
                query_labels: ArrayLike,
                database_labels: ArrayLike,
                k: int,
                tie_break: str = 'index',
                chunk_size: Optional[int] = None,
                nbits: Optional[int] = None) -> float:
    """Mean recall of the top ``k`` (``R@k``); see
    :func:`evaluate_retrieval`."""
    return _cutoff_metric('R', query_codes, database_codes, query_labels,
                          database_labels, k, tie_break, chunk_size, nbits)


def _radius_metrics(query_codes, database_codes, query_labels, database_labels,
                    radius, chunk_size, nbits):
    return evaluate_retrieval(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        map_topk=(),
        radius=(radius, ),
        tie_break=(),
        chunk_size=chunk_size,
        nbits=nbits)


def precision_within_radius(query_codes: ArrayLike,
                            database_codes: ArrayLike,
                            query_labels: ArrayLike,
                            database_labels: ArrayLike,
                            radius: int = 2,
                            chunk_size: Optional[int] = None,
                            nbits: Optional[int] = None) -> float:
    """Mean precision of the items within Hamming ``radius`` (``P@r<r>``;
    0 for a query with none); see :func:`evaluate_retrieval`."""
    return _radius_metrics(query_codes, database_codes, query_labels,
                           database_labels, radius, chunk_size,
                           nbits)[f'P@r{radius}']


def recall_within_radius(query_codes: ArrayLike,
                         database_codes: ArrayLike,
                         query_labels: ArrayLike,
                         database_labels: ArrayLike,
                         radius: int = 2,
                         chunk_size: Optional[int] = None,
                         nbits: Optional[int] = None) -> float:
    """Mean recall of the items within Hamming ``radius`` (``R@r<r>``); see
    :func:`evaluate_retrieval`."""
    return _radius_metrics(query_codes, database_codes, query_labels,
                           database_labels, radius, chunk_size,
                           nbits)[f'R@r{radius}']


def precision_recall_curve(
        query_codes: ArrayLike,
        database_codes: ArrayLike,
        query_labels: ArrayLike,
        database_labels: ArrayLike,
        chunk_size: Optional[int] = None,
        nbits: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall within every Hamming radius ``0..nbits``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(nbits + 1,)`` float64 precision and
        recall; entry ``r`` is :func:`precision_within_radius` /
        :func:`recall_within_radius` at radius ``r``.
    """
    results = evaluate_retrieval(
        query_codes,
        database_codes,
        query_labels,
        database_labels,
        map_topk=(),
        tie_break=(),
        pr_curve=True,
        chunk_size=chunk_size,
        nbits=nbits)
    return results['PR_precision'], results['PR_recall']
