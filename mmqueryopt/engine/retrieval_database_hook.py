"""Hook that hands the retrieval database to the Hamming metrics."""
from typing import Optional, Tuple

import torch
from mmengine.dist import collect_results, is_distributed, is_main_process
from mmengine.hooks import Hook
from torch import Tensor

from mmqueryopt.evaluation import HammingMAP
from mmqueryopt.registry import HOOKS
from .utils import unwrap_model


@HOOKS.register_module()
class RetrievalDatabaseHook(Hook):
    """Set the database (codes and labels) of every :class:`HammingMAP`
    before each validation and test run.

    Args:
        source (str): ``'learned'`` (the authors' protocol): the codes the
            model's database holds (ADSH: the first ``code_length`` columns
            of B, binarised) with their labels. ``'encoded'``: the network's codes of the database images,
            read through ``dataloader``.
        dataloader (dict, optional): Loader of the database images (the
            training split with test transforms), required for ``'encoded'``.
    """

    priority = 'NORMAL'

    def __init__(self, source: str = 'learned',
                 dataloader: Optional[dict] = None):
        if source not in ('learned', 'encoded'):
            raise ValueError(f"source must be 'learned' or 'encoded', got "
                             f'{source!r}')
        if source == 'encoded' and dataloader is None:
            raise ValueError("source='encoded' needs a database dataloader")
        self.source = source
        self.dataloader = dataloader

    def before_val_epoch(self, runner) -> None:
        self._set_database(runner, runner.val_evaluator)

    def before_test_epoch(self, runner) -> None:
        self._set_database(runner, runner.test_evaluator)

    def _set_database(self, runner, evaluator) -> None:
        metrics = [m for m in evaluator.metrics if isinstance(m, HammingMAP)]
        if not metrics:
            return
        codes, labels = (self._learned(runner) if self.source == 'learned'
                         else self._encoded(runner))
        if codes is not None:
            for metric in metrics:
                metric.set_database(codes, labels)

    @staticmethod
    def _learned(runner) -> Tuple[Tensor, Tensor]:
        model = unwrap_model(runner.model)
        found = model.database.retrieval_codes(model.code_length)
        if found is None:
            raise RuntimeError(
                f"source='learned' needs a database that holds codes, but "
                f'{type(model.database).__name__} holds none: use '
                f"RetrievalDatabaseHook(source='encoded', dataloader=...) "
                f'(tools/test.py --database encoded)')
        codes, labels = found
        return codes.cpu(), labels.cpu()

    @torch.no_grad()
    def _encoded(self, runner) -> Tuple[Tensor, Tensor]:
        if isinstance(self.dataloader, dict):
            self.dataloader = runner.build_dataloader(
                self.dataloader, seed=runner.seed)
        model = runner.model
        model.eval()
        encoded = []
        for data_batch in self.dataloader:
            for sample in model.test_step(data_batch):
                encoded.append((sample.hash_code.cpu(), sample.gt_label.cpu()))
        if is_distributed():
            # Metrics are computed on rank 0 only: it alone needs the result.
            encoded = collect_results(encoded, len(self.dataloader.dataset))
        if not is_main_process():
            return None, None
        codes, labels = zip(*encoded)
        return torch.stack(codes), torch.cat(labels)

