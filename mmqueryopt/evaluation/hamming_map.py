"""MMEngine metric: Hamming-ranking retrieval of queries against a database."""
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from mmqueryopt.fileio import Codes, save_codes
from mmqueryopt.registry import METRICS
from .functional import evaluate_retrieval
from .functional.codes import pack_codes


@METRICS.register_module()
class HammingMAP(BaseMetric):
    """mAP and friends of Hamming ranking, from one pass over the distances.

    The queries are the evaluated split; the database (codes and labels) is
    set before each run by ``RetrievalDatabaseHook``. ``mAP`` always ranks the
    whole database with ties broken by database index (see
    :func:`mmqueryopt.evaluation.functional.evaluate_retrieval` for every
    key); the rest is opt-in.

    Args:
        map_topk (Sequence[int]): Extra ``mAP@k``. Defaults to ().
        precision_k (Sequence[int]): ``P@k`` to report. Defaults to ().
        recall_k (Sequence[int]): ``R@k`` to report. Defaults to ().
        radius (Sequence[int]): ``P@r`` and ``R@r`` within Hamming radius r.
            Defaults to ().
        tie_break (Sequence[str]): ``'index'`` and/or ``'expected'`` (keys
            ending in ``_expected``: the exact mean over random orders within
            ties). Defaults to ``('index',)``.
        authors_protocol (bool): Also report ``mAP_authors`` (and
            ``mAP@<k>_authors``), the authors' routine: ties in database-index
            order as their stable GPU sort leaves them, last ranked item
            dropped. For comparison with published tables. Defaults to False.
        dump_file (str, optional): After each evaluation, write a codes
            file (:func:`mmqueryopt.fileio.save_codes`) here: query and
            database sides with their labels, and the precision-recall
            curve over all radii as extras ``pr_precision`` and
            ``pr_recall``. Defaults to None.
        collect_device (str): Where results are gathered under DDP.
        prefix (str, optional): Key prefix. Defaults to ``'retrieval'``.
    """

    default_prefix = 'retrieval'

    def __init__(self,
                 map_topk: Sequence[int] = (),
                 precision_k: Sequence[int] = (),
                 recall_k: Sequence[int] = (),
                 radius: Sequence[int] = (),
                 tie_break: Union[str, Sequence[str]] = ('index', ),
                 authors_protocol: bool = False,
                 dump_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        tie_break = (tie_break, ) if isinstance(tie_break, str) else tuple(
            tie_break)
        if 'index' not in tie_break:
            tie_break = ('index', *tie_break)  # `mAP` is always reported
        self.options = dict(
            map_topk=(None, *map_topk),
            precision_k=tuple(precision_k),
            recall_k=tuple(recall_k),
            radius=tuple(radius),
            tie_break=tie_break,
            authors_protocol=authors_protocol)
        self.dump_file = dump_file
        # Set by RoundVisualizerHook: keep the curve of the last
        # evaluation in ``pr_curve`` ((precision, recall) over radii).
        self.keep_pr_curve = False
        self.pr_curve = None
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
        query_codes = torch.stack(query_codes)
        query_labels = torch.cat(query_labels)
        want_curve = self.dump_file is not None or self.keep_pr_curve
        metrics = evaluate_retrieval(
            query_codes, self.database_codes, query_labels,
            self.database_labels, pr_curve=want_curve, **self.options)
        if want_curve:
            curve = metrics.pop('PR_precision'), metrics.pop('PR_recall')
            if self.keep_pr_curve:
                self.pr_curve = curve
            if self.dump_file is not None:
                self._dump(query_codes, query_labels, *curve)
        return metrics

    def _dump(self, query_codes, query_labels, pr_precision,
              pr_recall) -> None:
        sides = {}
        for side, codes, labels in (
                ('query', query_codes, query_labels),
                ('database', self.database_codes, self.database_labels)):
            packed, nbits = pack_codes(codes, f'{side}_codes')
            sides[side] = Codes(packed, nbits, labels=labels.cpu().numpy())
        # Written atomically: a kill mid-write leaves the previous file.
        save_codes(self.dump_file, sides,
                   extras=dict(pr_precision=np.asarray(pr_precision),
                               pr_recall=np.asarray(pr_recall)))
