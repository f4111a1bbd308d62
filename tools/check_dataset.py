"""Check a config's datasets before a long run: sizes, labels and images.

Builds the config's ``train_dataloader.dataset`` (the retrieval database) and
``test_dataloader.dataset`` (the queries; ``val_dataloader`` if there is no
test loader), compares each split's size with the official count, checks the
labels against the classes and that every listed image (or a random
``--sample``) exists and decodes in full (training's own decode; the check
the datasets run when they load reads only each file's header and end),
then prints a summary table (``diff`` is
the split's size minus the official count, ``classes`` the classes present
out of all).

Exit status: 0 when all is well (a size that differs from the official count
is reported, not failed: subsets are legitimate), 1 when an image is missing
or broken or a label is out of range, 2 when a dataset cannot be built.

Example::

    python tools/check_dataset.py configs/queryopt_cub_12bit.py --sample 500
"""
import argparse
import random
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import init_default_scope
from mmengine.utils import track_parallel_progress, track_progress

import mmqueryopt  # noqa: F401  (registers our types)
from mmqueryopt.datasets import (ClassFolders, DatasetError, HashingDataset,
                                 SplitSizeWarning)
from mmqueryopt.datasets.image_check import image_problem
from mmqueryopt.datasets.preflight import without_pipelines
from mmqueryopt.registry import DATASETS

ROLES = {'train': 'database', 'test': 'queries'}
LOADERS = {
    'train': ('train_dataloader', ),
    'test': ('test_dataloader', 'val_dataloader'),
}
MAX_LISTED_PROBLEMS = 20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--split', choices=['train', 'test', 'both'], default='both',
        help='which split to check (train = database, test = queries)')
    parser.add_argument(
        '--sample', type=int, default=None, metavar='N',
        help='decode a random N images per split instead of all')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of --sample')
    parser.add_argument(
        '--workers', type=int, default=1, help='processes that decode images')
    return parser.parse_args(argv)


def build_dataset(cfg: Config, split: str) -> BaseDataset:
    """Build the dataset of ``split`` from its dataloader config.

    Args:
        cfg (Config): The whole config.
        split (str): ``'train'`` or ``'test'``.

    Returns:
        BaseDataset: The dataset, unwrapped from dataset wrappers.
    """
    key = next((k for k in LOADERS[split] if cfg.get(k)), None)
    if key is None:
        raise KeyError(f'the config has no {" or ".join(LOADERS[split])}')
    # Images are decoded below, whatever the training pipeline does, and
    # listed in the table rather than failing the build.
    dataset_cfg = without_image_checks(without_pipelines(cfg[key]['dataset']))
    with warnings.catch_warnings():
        # The table reports the size difference; don't say it twice.
        warnings.simplefilter('ignore', SplitSizeWarning)
        dataset = DATASETS.build(dataset_cfg)
    while not isinstance(dataset, BaseDataset) and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def without_image_checks(dataset_cfg: Any) -> Any:
    """Turn off the load-time image check of our datasets in a config.

    Args:
        dataset_cfg (dict): A dataset config, possibly a wrapper.

    Returns:
        dict: The config, edited in place.
    """
    if not isinstance(dataset_cfg, dict):
        return dataset_cfg
    dataset_type = dataset_cfg.get('type')
    if isinstance(dataset_type, str):
        dataset_type = DATASETS.get(dataset_type)
    if isinstance(dataset_type, type) and issubclass(
            dataset_type, (HashingDataset, ClassFolders)):
        dataset_cfg['check_images'] = False
    without_image_checks(dataset_cfg.get('dataset'))
    for inner in dataset_cfg.get('datasets') or ():
        without_image_checks(inner)
    return dataset_cfg


def check_image(info: dict) -> Optional[Tuple[str, str]]:
    """Decode one image in full, as training does.

    Args:
        info (dict): A data info of the dataset.

    Returns:
        tuple[str, str] | None: None if the image decodes, else
        ``('missing' | 'broken', message)``.
    """
    path = info['img_path']
    problem = image_problem(path, full=True)
    if problem is None:
        return None
    source = (f" (listed at {info['list_line']})"
              if 'list_line' in info else '')
    if problem == 'missing':
        return 'missing', f'Image not found: {path}{source}'
    return 'broken', f'Cannot decode image {path}{source}: {problem}'


def check_split(dataset: BaseDataset, split: str, sample: Optional[int],
                seed: int, workers: int) -> Dict:
    """Check one split.

    Args:
        dataset (BaseDataset): The split's dataset.
        split (str): ``'train'`` or ``'test'``.
        sample (int, optional): Number of images to decode; None for all.
        seed (int): Seed of the sample.
        workers (int): Decoding processes.

    Returns:
        dict: The table row (``split``, ``role``, ``type``, ``images``,
        ``official``, ``classes``, ``labels``, ``checked``, ``missing``,
        ``broken``) plus ``label_set``, ``bad_labels`` and ``problems``.
    """
    labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    num_classes = len(dataset.metainfo.get('classes') or ())
    indices = list(range(len(dataset)))
    if sample is not None and sample < len(indices):
        indices = sorted(random.Random(seed).sample(indices, sample))
    print(f'Decoding {len(indices)} {split} images')
    infos = [dataset.get_data_info(i) for i in indices]
    if not infos:
        results = []
    elif workers > 1:
        results = track_parallel_progress(
            check_image, infos, workers, chunksize=16)
    else:
        results = track_progress(check_image, infos)
    problems = [result for result in results if result is not None]
    kinds = [kind for kind, _ in problems]
    return dict(
        split=split,
        role=ROLES[split],
        type=type(dataset).__name__,
        images=len(dataset),
        official=getattr(dataset, 'official_size', None),
        classes=f'{len(np.unique(labels))}/{num_classes}',
        labels=f'{labels.min()}..{labels.max()}' if labels.size else '-',
        checked=len(indices),
        missing=kinds.count('missing'),
        broken=kinds.count('broken'),
        label_set=set(labels.tolist()),
        bad_labels=int(((labels < 0) | (labels >= num_classes)).sum()),
        problems=problems)


def format_table(rows: List[Dict]) -> str:
    """Format the per-split rows as an aligned text table.

    Args:
        rows (list[dict]): Rows from :func:`check_split`.

    Returns:
        str: The table, a header line and a line per split.
    """
    columns = ['split', 'role', 'type', 'images', 'official', 'diff',
               'classes', 'labels', 'checked', 'missing', 'broken']
    cells = [columns]
    for row in rows:
        official = row['official']
        row = dict(
            row,
            official='-' if official is None else official,
            diff='-' if official is None else
            f"{row['images'] - official:+d}")
        cells.append([str(row[column]) for column in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    # Text columns read better left-aligned, numbers right-aligned.
    return '\n'.join(
        '  '.join(
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths)))
        for line in cells)


def report(rows: List[Dict]) -> List[str]:
    """List the problems found and the verdict, one message a line.

    Args:
        rows (list[dict]): Rows from :func:`check_split`.

    Returns:
        list[str]: Lines to print below the table; the last is the verdict.
    """
    lines, failures = [], []
    for row in rows:
        for kind, message in row['problems'][:MAX_LISTED_PROBLEMS]:
            lines.append(f"{row['split']} {kind}: {message}")
        if len(row['problems']) > MAX_LISTED_PROBLEMS:
            lines.append(f"{row['split']}: ... and "
                         f"{len(row['problems']) - MAX_LISTED_PROBLEMS} more")
        for key in ('missing', 'broken'):
            if row[key]:
                failures.append(f"{row[key]} {key} {row['split']} images")
        if row['bad_labels']:
            failures.append(f"{row['bad_labels']} {row['split']} labels "
                            'outside the classes')
    by_split = {row['split']: row for row in rows}
    if len(by_split) == 2:
        queries, database = by_split['test'], by_split['train']
        orphans = queries['label_set'] - database['label_set']
        if orphans:
            lines.append(f'note: {len(orphans)} query classes have no '
                         f'database image (labels {sorted(orphans)[:10]})')
    verdict = 'FAILED: ' + ', '.join(failures) if failures else 'OK'
    return lines + [f'Result: {verdict}']


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check.

    Args:
        argv (Sequence[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: The exit status (0 OK, 1 failed checks, 2 unbuildable dataset).
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    splits = ['train', 'test'] if args.split == 'both' else [args.split]
    rows = []
    for split in splits:
        try:
            dataset = build_dataset(cfg, split)
        except DatasetError as err:
            err.config = args.config
            print(f'Cannot build the {split} dataset: {err}')
            return 2
        except (KeyError, FileNotFoundError, ValueError) as err:
            print(f'Cannot build the {split} dataset: {err}')
            return 2
        rows.append(
            check_split(dataset, split, args.sample, args.seed, args.workers))
    print(format_table(rows))
    lines = report(rows)
    print('\n'.join(lines))
    return 0 if lines[-1] == 'Result: OK' else 1


if __name__ == '__main__':
    sys.exit(main())
