"""Checking a config's data before a run spends any work.

The tools call :func:`check_data` before they build the runner, so that a
missing dataset or a broken image is one line before the first round, not a
traceback in the first batch or after a round's checkpoint. The datasets do
the checks themselves when they load their lists (any dataset built from our
configs is checked, with or without the tools); this module builds each
loader's dataset once, without its pipeline, and reports the problems of
all of them in one message. The image checks are cached, so the runner's own
build later checks nothing again.
"""
import copy
import warnings
from typing import Any, List, Tuple

from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmqueryopt.registry import DATASETS
from .base import SplitSizeWarning
from .errors import DatasetError

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def check_data(cfg: Config) -> None:
    """Check every dataloader's dataset: folders, list files and images.

    Each of ``train_dataloader``, ``val_dataloader`` and ``test_dataloader``
    that the config sets has its dataset built (pipelines left out; dataset
    wrappers included), which checks that the data root and list files
    exist, that the lists are well formed and that every image would load.
    A loader whose dataset equals an earlier one's is not built again.

    Args:
        cfg (Config): The whole config, after ``--cfg-options``.

    Raises:
        DatasetError: One line naming, per config key, what is missing or
            broken (every broken image of every split at once), where to
            get the dataset and the ``tools/check_dataset.py`` command.
    """
    scope = cfg.get('default_scope', 'mmqueryopt')
    checked: List[Tuple[Any, List[str]]] = []  # (dataset cfg, keys)
    failures: List[Tuple[DatasetError, List[str]]] = []
    for loader in LOADERS:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or not loader_cfg.get('dataset'):
            continue
        key = f'{loader}.dataset'
        dataset_cfg = without_pipelines(loader_cfg['dataset'])
        same = next((keys for done, keys in checked if done == dataset_cfg),
                    None)
        if same is not None:
            same.append(key)
            continue
        keys = [key]
        checked.append((dataset_cfg, keys))
        try:
            with DefaultScope.overwrite_default_scope(scope), \
                    warnings.catch_warnings():
                # The runner's build warns about sizes; don't say it twice.
                warnings.simplefilter('ignore', SplitSizeWarning)
                dataset = DATASETS.build(dataset_cfg)
                if hasattr(dataset, 'full_init'):  # lazy_init=True
                    dataset.full_init()
        except DatasetError as error:
            failures.append((error, keys))
    if failures:
        raise _combine(failures, cfg.filename)


def without_pipelines(dataset_cfg: Any) -> Any:
    """Copy a dataset config with every pipeline, nested ones too, empty.

    Args:
        dataset_cfg (dict): A dataset config, possibly a wrapper holding
            ``dataset`` or ``datasets``.

    Returns:
        dict: The copy; building it builds no transform.
    """
    dataset_cfg = copy.deepcopy(dataset_cfg)
    if isinstance(dataset_cfg, dict):
        if 'pipeline' in dataset_cfg:
            dataset_cfg['pipeline'] = []
        if 'dataset' in dataset_cfg:
            dataset_cfg['dataset'] = without_pipelines(dataset_cfg['dataset'])
        if isinstance(dataset_cfg.get('datasets'), (list, tuple)):
            dataset_cfg['datasets'] = [
                without_pipelines(inner) for inner in dataset_cfg['datasets']
            ]
    return dataset_cfg


def _combine(failures: List[Tuple[DatasetError, List[str]]],
             config: str) -> DatasetError:
    """One error for the failures of several loaders; equal problems
    (the same missing root for every loader) are said once."""
    groups: List[Tuple[DatasetError, List[str]]] = []
    for error, keys in failures:
        match = next((g for g in groups
                      if (g[0].problem, g[0].key) == (error.problem,
                                                       error.key)), None)
        if match is None:
            groups.append((error, list(keys)))
        else:
            match[1].extend(keys)

    def keyed(error: DatasetError, keys: List[str]) -> str:
        suffix = f'.{error.key}' if error.key else ''
        return ', '.join(f'{key}{suffix}' for key in keys)

    if len(groups) == 1:
        error, keys = groups[0]
        error.key = keyed(error, keys)
        error.config = config
        return error
    combined = DatasetError(
        '; '.join(f'{keyed(e, keys)}: {e.problem}' for e, keys in groups),
        next((e.source for e, _ in groups if e.source), None))
    combined.config = config
    return combined
