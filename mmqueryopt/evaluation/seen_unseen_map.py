"""MMEngine metric: the four retrieval protocols of a seen/unseen split."""
from typing import Dict, Optional, Union

import torch
from mmengine.logging import MMLogger
from torch import Tensor

from mmqueryopt.registry import METRICS
from .functional import evaluate_retrieval
from .hamming_map import HammingMAP

#: The protocols as ``<queries>@<database>``, in DSH_Analysis's order.
PROTOCOLS = ('seen@seen', 'seen@all', 'unseen@unseen', 'unseen@all')


@METRICS.register_module()
class SeenUnseenMAP(HammingMAP):
    """Hamming-ranking retrieval under DSH_Analysis's seen/unseen protocol.

    The evaluated split holds the *seen* queries (test images of the classes
    the model trained on). ``RetrievalDatabaseHook`` sets, before each run,
    the seen database (the model's learned codes or the encoded training
    images, as for :class:`HammingMAP`) and the network's codes of the
    *unseen* classes' test images (unseen queries) and training images
    (unseen database). Four protocols are evaluated, each with every
    option of :class:`HammingMAP`:

    * ``seen@seen``: seen queries vs the seen database;
    * ``seen@all``: seen queries vs the seen database followed by the
      unseen database;
    * ``unseen@unseen``: unseen queries vs the unseen database;
    * ``unseen@all``: unseen queries vs the seen database followed by the
      unseen database.

    Keys are ``<protocol>/<key of evaluate_retrieval>``, e.g.
    ``seen@seen/mAP`` (no ``retrieval/`` prefix unless ``prefix`` is
    given): select the best checkpoint with
    ``save_best='seen@seen/mAP'``. After each evaluation the log names the
    evaluation with the best ``seen@seen/mAP`` so far and the other three
    mAPs at it, as DSH_Analysis reports them. The dump file and the
    precision-recall curve are ``seen@seen``'s.

    Args:
        **kwargs: The arguments of :class:`HammingMAP`.
    """

    default_prefix = ''

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.unseen: Optional[Dict[str, Tensor]] = None
        self._evaluations = 0
        self._best: Optional[Dict[str, Union[int, float]]] = None

    def set_unseen(self, query_codes: Tensor, query_labels: Tensor,
                   database_codes: Tensor, database_labels: Tensor) -> None:
        """Set the unseen classes' codes for the next evaluation.

        Args:
            query_codes (Tensor): (q, k) in {-1, +1}, the unseen test images.
            query_labels (Tensor): (q,) class ids.
            database_codes (Tensor): (u, k) in {-1, +1}, the unseen training
                images.
            database_labels (Tensor): (u,) class ids.
        """
        self.unseen = dict(
            query_codes=query_codes, query_labels=query_labels,
            database_codes=database_codes, database_labels=database_labels)

    def compute_metrics(self, results: list) -> dict:
        if self.unseen is None:
            raise RuntimeError(
                'SeenUnseenMAP has no unseen codes: the evaluated dataset '
                'needs unseen_ratio > 0 and custom_hooks a '
                "RetrievalDatabaseHook (docs/seen_unseen.md)")
        seen = super().compute_metrics(results)  # seen@seen, curve, dump
        query_codes = torch.stack([codes for codes, _ in results])
        query_labels = torch.cat([labels for _, labels in results])
        unseen = self.unseen
        self._check_disjoint(query_labels, unseen['query_labels'])
        all_codes = torch.cat(
            [self.database_codes, unseen['database_codes']])
        all_labels = torch.cat(
            [self.database_labels, unseen['database_labels']])
        sides = {
            'seen@all': (query_codes, all_codes, query_labels, all_labels),
            'unseen@unseen': (unseen['query_codes'], unseen['database_codes'],
                              unseen['query_labels'],
                              unseen['database_labels']),
            'unseen@all': (unseen['query_codes'], all_codes,
                           unseen['query_labels'], all_labels),
        }
        metrics = {f'seen@seen/{key}': value for key, value in seen.items()}
        for protocol, arguments in sides.items():
            for key, value in evaluate_retrieval(
                    *arguments, **self.options).items():
                metrics[f'{protocol}/{key}'] = value
        self._log_best(metrics)
        return metrics

    def _check_disjoint(self, seen_query_labels: Tensor,
                        unseen_query_labels: Tensor) -> None:
        """Seen and unseen classes must not share a label, or the
        protocols would mix them."""
        seen = torch.cat([seen_query_labels.flatten(),
                          self.database_labels.flatten()])
        unseen = torch.cat([unseen_query_labels.flatten(),
                            self.unseen['database_labels'].flatten()])
        shared = torch.unique(seen[torch.isin(seen, unseen)])
        if len(shared):
            raise ValueError(
                f'labels {shared.tolist()[:10]} are both seen (queries or '
                f'database) and unseen: the query dataset, the training set '
                f'and the database loader need the same unseen_ratio '
                f'(docs/seen_unseen.md)')

    def _log_best(self, metrics: Dict[str, float]) -> None:
        self._evaluations += 1
        if (self._best is None
                or metrics['seen@seen/mAP'] > self._best['seen@seen/mAP']):
            self._best = dict(
                {f'{p}/mAP': metrics[f'{p}/mAP'] for p in PROTOCOLS},
                evaluation=self._evaluations)
        best = self._best
        MMLogger.get_current_instance().info(
            f"Best seen@seen/mAP so far: {best['seen@seen/mAP']:.4f} "
            f"(evaluation {best['evaluation']} of this run), with "
            + ', '.join(f'{p}/mAP {best[f"{p}/mAP"]:.4f}'
                        for p in PROTOCOLS[1:]))

