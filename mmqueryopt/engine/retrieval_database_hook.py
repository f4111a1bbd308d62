"""Hook that hands the retrieval database to the Hamming metrics."""
import copy
from typing import Dict, Optional, Tuple

import torch
from mmengine.dist import collect_results, is_distributed, is_main_process
from mmengine.hooks import Hook
from torch import Tensor

from mmqueryopt.evaluation import HammingMAP, SeenUnseenMAP
from mmqueryopt.registry import HOOKS
from .config_options import ConfigError
from .utils import unwrap_model

_SOURCES = ('auto', 'learned', 'encoded')


@HOOKS.register_module()
class RetrievalDatabaseHook(Hook):
    """Set the database (codes and labels) of every :class:`HammingMAP`
    before each validation and test run.

    Args:
        source (str): ``'auto'`` (the default): what the model's database
            strategy is, i.e. the codes it holds when it holds some
            (``database.holds_codes``: ADSH's B), else the network's codes
            of the database images. ``'learned'`` (the authors' protocol):
            the codes the model's database holds (ADSH: the first
            ``code_length`` columns of B, binarised) with their labels, an
            error when it holds none. ``'encoded'``: the network's codes of
            the database images, read through ``dataloader``.
        dataloader (dict, optional): Loader of the database images. None
            (the default): the training split read like the evaluated
            queries (:func:`database_loader_cfg`), so that a change of the
            training set's ``data_root`` reaches the database too.

    For a :class:`SeenUnseenMAP` (the seen/unseen protocol,
    docs/seen_unseen.md) it also encodes the unseen classes' test images
    (the evaluated loader with ``dataset.subset='unseen'``) and training
    images (the same with ``dataset.split='train'``), and before training
    or testing it checks that the training set, the queries and an encoded
    database hold out the same classes.
    """

    priority = 'NORMAL'

    def __init__(self, source: str = 'auto',
                 dataloader: Optional[dict] = None):
        if source not in _SOURCES:
            raise ValueError(f'RetrievalDatabaseHook source must be one of '
                             f'{_SOURCES}, got {source!r}')
        self.source = source
        self.dataloader = dataloader
        # Per phase ('val', 'test'): the built database loader, and the
        # unseen queries' and database's loaders, built at first use.
        self._database_loaders: Dict[str, object] = {}
        self._unseen_loaders: Dict[str, tuple] = {}

    def before_train(self, runner) -> None:
        self._check_split(runner, 'val', runner.cfg.get('train_dataloader'))

    def before_test(self, runner) -> None:
        self._check_split(runner, 'test')

    def before_val_epoch(self, runner) -> None:
        self._set_database(runner, runner.val_evaluator, 'val')

    def before_test_epoch(self, runner) -> None:
        self._set_database(runner, runner.test_evaluator, 'test')

    def _set_database(self, runner, evaluator, phase: str) -> None:
        metrics = [m for m in evaluator.metrics if isinstance(m, HammingMAP)]
        if not metrics:
            return
        codes, labels = (self._learned(runner)
                         if self.resolved_source(runner) == 'learned' else
                         self._encoded(runner, phase))
        if codes is not None:
            for metric in metrics:
                metric.set_database(codes, labels)
        if any(isinstance(m, SeenUnseenMAP) for m in metrics):
            self._set_unseen(runner, metrics, phase)

    def _set_unseen(self, runner, metrics, phase: str) -> None:
        if phase not in self._unseen_loaders:
            queries = copy.deepcopy(runner.cfg[f'{phase}_dataloader'])
            queries['dataset'].update(subset='unseen')
            database = copy.deepcopy(queries)
            database['dataset'].update(split='train')
            self._unseen_loaders[phase] = tuple(
                runner.build_dataloader(loader, seed=runner.seed)
                for loader in (queries, database))
        query_loader, database_loader = self._unseen_loaders[phase]
        query_codes, query_labels = encode(runner.model, query_loader)
        codes, labels = encode(runner.model, database_loader)
        if query_codes is None:  # not the main process
            return
        for metric in metrics:
            if isinstance(metric, SeenUnseenMAP):
                metric.set_unseen(query_codes, query_labels, codes, labels)

    def _check_split(self, runner, phase: str,
                     train_loader: Optional[dict] = None) -> None:
        """The training set, the queries and an encoded database must hold
        out the same classes, and a :class:`SeenUnseenMAP` needs some held
        out: a clear error before any round or encoding is spent."""
        evaluator = runner.cfg.get(f'{phase}_evaluator')
        query_loader = runner.cfg.get(f'{phase}_dataloader')
        if not evaluator or not query_loader:
            return
        loaders = {f'{phase}_dataloader': query_loader,
                   'train_dataloader': train_loader}
        # A database loader of its own (None: derived from the training
        # loader, whose split is checked already).
        if self.source != 'learned' and isinstance(self.dataloader, dict):
            loaders['custom_hooks RetrievalDatabaseHook.dataloader'] = (
                self.dataloader)
        ratios = {f'{key}.dataset.unseen_ratio': _unseen_ratio(loader)
                  for key, loader in loaders.items() if loader is not None}
        query_key = f'{phase}_dataloader.dataset.unseen_ratio'
        evaluators = evaluator if isinstance(evaluator, list) else [evaluator]
        if any(e.get('type') in ('SeenUnseenMAP', 'mmqueryopt.SeenUnseenMAP')
               for e in evaluators) and not ratios[query_key]:
            raise ConfigError(
                f'{phase}_evaluator SeenUnseenMAP needs {query_key} > 0 (the '
                f'fraction of classes held out of training, e.g. 0.05), got '
                f'{ratios[query_key]!r} (docs/seen_unseen.md)')
        if len(set(ratios.values())) > 1:
            raise ConfigError(
                'the seen/unseen split must be the same for training, '
                'queries and database, got ' + ', '.join(
                    f'{key}={value!r}' for key, value in ratios.items())
                + ' (docs/seen_unseen.md)')

    @staticmethod
    def _learned(runner) -> Tuple[Tensor, Tensor]:
        model = unwrap_model(runner.model)
        found = model.database.retrieval_codes(model.code_length)
        if found is None:
            raise RuntimeError(
                f"source='learned' needs a database that holds codes, but "
                f'{type(model.database).__name__} holds none: use '
                f"RetrievalDatabaseHook(source='encoded') or 'auto' "
                f'(tools/test.py --database encoded)')
        codes, labels = found
        return codes.cpu(), labels.cpu()

    def resolved_source(self, runner) -> str:
        """'learned' or 'encoded': ``source``, with 'auto' resolved by
        the model's database strategy."""
        if self.source != 'auto':
            return self.source
        database = unwrap_model(runner.model).database
        return 'learned' if database.holds_codes else 'encoded'

    def _encoded(self, runner, phase: str) -> Tuple[Tensor, Tensor]:
        if phase not in self._database_loaders:
            loader = self.dataloader or database_loader_cfg(runner.cfg, phase)
            self._database_loaders[phase] = (
                runner.build_dataloader(loader, seed=runner.seed)
                if isinstance(loader, dict) else loader)
        return encode(runner.model, self._database_loaders[phase])


def database_loader_cfg(cfg, phase: str = 'test') -> dict:
    """The database images' loader: the training split read like the
    ``phase`` queries (their loader settings and test transforms).

    Args:
        cfg (Config): A whole config.
        phase (str): ``'val'`` or ``'test'``.

    Returns:
        dict: A dataloader config.
    """
    queries = cfg[f'{phase}_dataloader']
    loader = copy.deepcopy(queries)
    loader['dataset'] = copy.deepcopy(cfg.train_dataloader['dataset'])
    loader['dataset']['pipeline'] = copy.deepcopy(
        queries['dataset']['pipeline'])
    return loader


@torch.no_grad()
def encode(model, dataloader) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """The network's codes of a loader's images, in dataset order.

    Args:
        model: The runner's model (wrapped or not), set to eval mode here.
        dataloader (DataLoader): Loader of the images, with test transforms.

    Returns:
        tuple[Tensor, Tensor]: (n, k) codes in {-1, +1} and (n,) labels on
        the main process; ``(None, None)`` on the other ranks.
    """
    model.eval()
    encoded = []
    for data_batch in dataloader:
        for sample in model.test_step(data_batch):
            encoded.append((sample.hash_code.cpu(), sample.gt_label.cpu()))
    if is_distributed():
        # Metrics are computed on rank 0 only: it alone needs the result.
        encoded = collect_results(encoded, len(dataloader.dataset))
    if not is_main_process():
        return None, None
    codes, labels = zip(*encoded)
    return torch.stack(codes), torch.cat(labels)


def _unseen_ratio(loader) -> float:
    """A loader config's ``dataset.unseen_ratio`` (0 when unset)."""
    dataset = loader.get('dataset') if isinstance(loader, dict) else getattr(
        loader, 'dataset', None)
    if isinstance(dataset, dict):
        return dataset.get('unseen_ratio', 0) or 0
    return getattr(dataset, 'unseen_ratio', 0) or 0

