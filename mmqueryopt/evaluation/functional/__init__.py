"""Functional retrieval metrics of binary codes (no runner needed).

See :func:`evaluate_retrieval` for the result keys and conventions.
"""
from .retrieval import evaluate_retrieval, result_key
from .single import (mean_average_precision, precision_at_k,
                     precision_recall_curve, precision_within_radius,
                     recall_at_k, recall_within_radius)

__all__ = [
    'evaluate_retrieval', 'mean_average_precision', 'precision_at_k',
    'recall_at_k', 'precision_within_radius', 'recall_within_radius',
    'precision_recall_curve', 'result_key'
]
