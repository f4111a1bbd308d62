"""MMEngine metric: Hamming-ranking retrieval of queries against a database."""
from typing import Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from mmqueryopt.registry import METRICS
from .functional import evaluate_retrieval


@METRICS.register_module()
class HammingMAP(BaseMetric):
    """mAP (and friends) of Hamming ranking; the queries are the evaluated
    split, the database is set by ``RetrievalDatabaseHook`` before each run.

    ``mAP`` always ranks the whole database with ties broken by database
    index; extras are opt-in.

    Args:
        map_topk (Sequence[int]): Extra ``mAP@k``. Defaults to ().
        precision_k (Sequence[int]): ``P@k`` to report. Defaults to ().
        recall_k (Sequence[int]): ``R@k`` to report. Defaults to ().
        radius (Sequence[int]): ``P@r`` and ``R@r`` within Hamming radius r.
            Defaults to ().
        expected_ties (bool): Also report ``mAP_expected``, the exact mean
            over random orders within ties. Defaults to False.
        authors_protocol (bool): Also report ``mAP_authors``, the authors'
            routine (drops the last ranked item). Defaults to False.
        collect_device (str): Where results are gathered under DDP.
        prefix (str, optional): Key prefix. Defaults to ``'retrieval'``.
    """

    default_prefix = 'retrieval'

    def __init__(self,
                 map_topk: Sequence[int] = (),
                 precision_k: Sequence[int] = (),
                 recall_k: Sequence[int] = (),
                 radius: Sequence[int] = (),
                 expected_ties: bool = False,
                 authors_protocol: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.map_topk = (None, *map_topk)
        self.precision_k = tuple(precision_k)
        self.recall_k = tuple(recall_k)
        self.radius = tuple(radius)
        self.tie_break = ('index', 'expected') if expected_ties else (
            'index', )
        self.authors_protocol = authors_protocol
        self.database_codes: Optional[Tensor] = None
        self.database_labels: Optional[Tensor] = None

    def set_database(self, codes: Tensor, labels: Tensor) -> None:
        """Args: codes (Tensor): (m, k) in {-1, +1}. labels (Tensor): (m,)."""
        self.database_codes = codes
        self.database_labels = labels

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append((sample['hash_code'].cpu(),
                                 sample['gt_label'].cpu()))

    def compute_metrics(self, results: list) -> dict:
        if self.database_codes is None:
            raise RuntimeError(
                'HammingMAP has no database: add '
                "dict(type='RetrievalDatabaseHook') to custom_hooks")
        query_codes, query_labels = zip(*results)
        metrics = evaluate_retrieval(
            torch.stack(query_codes), self.database_codes,
            torch.cat(query_labels), self.database_labels,
            map_topk=self.map_topk, precision_k=self.precision_k,
            recall_k=self.recall_k, radius=self.radius,
            tie_break=self.tie_break)
        if self.authors_protocol:
            metrics['mAP_authors'] = evaluate_retrieval(
                torch.stack(query_codes), self.database_codes,
                torch.cat(query_labels), self.database_labels,
                authors_protocol=True)['mAP']
        return metrics
