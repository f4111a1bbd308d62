from .functional import (evaluate_retrieval, mean_average_precision,
                         precision_at_k, precision_recall_curve,
                         precision_within_radius, recall_at_k,
                         recall_within_radius)
from .hamming_map import HammingMAP
from .seen_unseen_map import PROTOCOLS, SeenUnseenMAP

__all__ = [
    'HammingMAP', 'SeenUnseenMAP', 'PROTOCOLS', 'evaluate_retrieval',
    'mean_average_precision', 'precision_at_k', 'recall_at_k',
    'precision_within_radius', 'recall_within_radius',
    'precision_recall_curve'
]
