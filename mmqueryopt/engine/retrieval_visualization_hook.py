"""Hook that draws the result grids of the first queries of a test run."""
import os
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmqueryopt.evaluation import HammingMAP
from mmqueryopt.registry import DATASETS, HOOKS
from mmqueryopt.retrieval import BinaryIndex, save_grid
from .retrieval_database_hook import (RetrievalDatabaseHook,
                                      database_loader_cfg)


@HOOKS.register_module()
class RetrievalVisualizationHook(Hook):
    """After a test run, draw the first ``num`` queries' nearest database
    images as PNG grids, as ``tools/search.py --show-dir`` draws them
    (:func:`mmqueryopt.retrieval.save_grid`).

    The database is the one the metric ranked (set by
    :class:`RetrievalDatabaseHook`), searched with
    :class:`mmqueryopt.retrieval.BinaryIndex`, ties in database order as
    ``mAP`` ranks them. Its images are those of the database hook's
    dataloader when it has one, else of ``train_dataloader``, in dataset
    order: the order of ADSH's database codes and of the encoded ones.
    Files are ``<n>_<query name>.png``; borders green or red (same or
    another class) for single-label datasets. Under the distributed
    launcher, rank 0 draws the first ``num`` queries of its own share.

    Args:
        show_dir (str): Folder of the PNGs (created when needed).
        num (int): Queries to draw. Defaults to 20.
        topk (int): Results per query. Defaults to 10.
        thumb_size (int): Thumbnail side in pixels. Defaults to 128.
        ncols (int): Cells per row. Defaults to 6.
    """

    priority = 'LOW'

    def __init__(self, show_dir: str, num: int = 20, topk: int = 10,
                 thumb_size: int = 128, ncols: int = 6):
        if num < 1 or topk < 1:
            raise ValueError(f'num and topk must be at least 1; got num={num}'
                             f', topk={topk}')
        self.show_dir = show_dir
        self.num = num
        self.topk = topk
        self.thumb_size = thumb_size
        self.ncols = ncols
        self._queries: List[tuple] = []

    def before_test_epoch(self, runner) -> None:
        self._queries = []

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        # Only the first `num` queries are kept: a test set may be large.
        for sample in outputs or ():
            if len(self._queries) >= self.num:
                return
            self._queries.append((sample.hash_code.cpu(), sample.img_path,
                                  sample.gt_label.cpu()))

    def after_test_epoch(self, runner, metrics=None) -> None:
        if not is_main_process() or not self._queries:
            return
        metric = next((m for m in runner.test_evaluator.metrics
                       if isinstance(m, HammingMAP)), None)
        if metric is None or metric.database_codes is None:
            raise RuntimeError(
                'RetrievalVisualizationHook needs a HammingMAP test metric '
                'with a database (RetrievalDatabaseHook)')
        paths = self._database_paths(runner)
        if len(paths) != len(metric.database_codes):
            raise RuntimeError(
                f'the database has {len(metric.database_codes)} codes but '
                f'its dataset {len(paths)} images: the checkpoint was trained '
                f'on another dataset')
        labels = metric.database_labels.numpy()
        single = labels.ndim == 1
        index = BinaryIndex.from_codes(metric.database_codes.numpy())
        codes = torch.stack([q[0] for q in self._queries]).numpy()
        indices, distances = index.search(codes, min(self.topk, len(paths)))
        os.makedirs(self.show_dir, exist_ok=True)
        for n, (_, path, label) in enumerate(self._queries):
            name = osp.splitext(osp.basename(path))[0]
            save_grid(
                osp.join(self.show_dir, f'{n:03d}_{name}.png'), path,
                [paths[i] for i in indices[n]], distances[n],
                int(label[0]) if single else None,
                [int(labels[i]) for i in indices[n]] if single else None,
                self.thumb_size, self.ncols)
        runner.logger.info(f'Drew {len(self._queries)} result grids in '
                           f'{self.show_dir}')

    @staticmethod
    def _database_paths(runner) -> List[str]:
        """The database images, in the order of the database codes."""
        dataset_cfg: Optional[dict] = None
        for hook in runner.hooks:
            if isinstance(hook, RetrievalDatabaseHook) and (
                    hook.resolved_source(runner) == 'encoded'):
                loader = hook.dataloader or database_loader_cfg(
                    runner.cfg, 'test')
                dataset_cfg = (loader.dataset if not isinstance(loader, dict)
                               else loader['dataset'])
        if dataset_cfg is None:
            dataset_cfg = runner.cfg.train_dataloader.dataset
        dataset = (dataset_cfg if not isinstance(dataset_cfg, dict) else
                   DATASETS.build(dataset_cfg))
        return [
            dataset.get_data_info(i)['img_path'] for i in range(len(dataset))
        ]
