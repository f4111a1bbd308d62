"""Precision-recall and precision@N curves of evaluation dumps.

A dump is what ``HammingMAP(dump_file=...)`` writes after an evaluation
(``tools/test.py --out``): a codes file with query and database sides and
their labels, and the precision-recall curve over Hamming radii 0..k as
its extras ``pr_precision`` and ``pr_recall``; dumps of the older layout
load too (:func:`mmqueryopt.fileio.read_codes_file`).
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmqueryopt.evaluation.functional import evaluate_retrieval, result_key
from mmqueryopt.fileio import read_codes_file
from .figures import DPI, pyplot, save_figure

# The keys of load_dump's result (besides nbits).
DUMP_KEYS = ('query_codes', 'query_labels', 'database_codes',
             'database_labels', 'pr_precision', 'pr_recall')
_CURVE_KEYS = ('pr_precision', 'pr_recall')


def load_dump(path: str) -> Dict[str, np.ndarray]:
    """Read an evaluation dump, checking it.

    Returns:
        dict: :data:`DUMP_KEYS`, codes as ``(N, nbits)`` int8 in {-1, +1},
        and ``nbits``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a dump (a :class:`~mmqueryopt.fileio.CodesFileError`
            for a bad codes file); names the file and the key.
    """
    file = read_codes_file(path, need_labels=True)
    query, database = file.side('query'), file.side('database')
    for key in _CURVE_KEYS:
        if key not in file.extras:
            raise ValueError(
                f'{path!r} is not an evaluation dump (tools/test.py --out, '
                f'HammingMAP dump_file): no {key}')
    nbits = query.nbits
    for key in _CURVE_KEYS:
        if file.extras[key].shape != (nbits + 1, ):
            raise ValueError(
                f'{path!r}: {key} has shape {file.extras[key].shape}, '
                f'expected ({nbits + 1},) for {nbits}-bit codes')
    return dict(query_codes=query.signs(), query_labels=query.labels,
                database_codes=database.signs(),
                database_labels=database.labels,
                pr_precision=file.extras['pr_precision'],
                pr_recall=file.extras['pr_recall'], nbits=nbits)


def default_ns(num_database: int, max_n: int = 1000,
               points: int = 20) -> List[int]:
    """1, then ``points`` evenly spaced N up to ``min(max_n, D)``."""
    top = min(max_n, num_database)
    grid = np.linspace(0, top, points + 1).round().astype(int)[1:]
    return sorted({1, *(int(n) for n in grid if n >= 1)})


def precision_at_n(dump: Dict[str, np.ndarray],
                   ns: Sequence[int]) -> np.ndarray:
    """Mean precision of the top N (ties in database order, as ``mAP``
    ranks them) for each N, by the metric's own function.

    Returns:
        np.ndarray: (len(ns),) float64.
    """
    results = evaluate_retrieval(
        dump['query_codes'], dump['database_codes'], dump['query_labels'],
        dump['database_labels'], map_topk=(), precision_k=tuple(ns))
    return np.array([results[result_key('P', n, 'index')] for n in ns])


def check_same_length(paths: Sequence[str], nbits: Sequence[int]) -> None:
    """Refuse curves of different code lengths on one figure.

    Raises:
        ValueError: Naming each file with its code length.
    """
    if len(set(nbits)) > 1:
        listed = ', '.join(f'{p!r}: {k} bits' for p, k in zip(paths, nbits))
        raise ValueError(f'runs of different code lengths cannot share a '
                         f'plot ({listed}); plot each length separately')


def run_names(paths: Sequence[str]) -> List[str]:
    """Legend names: file names, with their folders where two clash."""
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [osp.splitext(osp.relpath(p))[0] for p in paths]


def plot_curves(out_file: str, curves: Sequence[dict],
                names: Sequence[str], title: Optional[str] = None) -> None:
    """Precision-recall (left) and precision@N (right), one line per run.

    Args:
        out_file (str): The PNG, 1280 x 480 pixels.
        curves (Sequence[dict]): Per run, ``pr_precision``, ``pr_recall``
            (over radii 0..k) and ``ns``, ``precision_at_n``.
        names (Sequence[str]): The legend.
        title (str, optional): Figure title.
    """
    plt = pyplot()
    fig, (pr_ax, pn_ax) = plt.subplots(1, 2, figsize=(12.8, 4.8), dpi=DPI)
    for curve, name in zip(curves, names):
        pr_ax.plot(curve['pr_recall'], curve['pr_precision'], marker='o',
                   markersize=3, label=name)
        pn_ax.plot(curve['ns'], curve['precision_at_n'], marker='o',
                   markersize=3, label=name)
    pr_ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.02),
              ylim=(0, 1.02),
              title='precision-recall (Hamming radius 0..k)')
    pn_ax.set(xlabel='N (top N retrieved)', ylabel='precision',
              ylim=(0, 1.02), title='precision@N')
    for ax in (pr_ax, pn_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, out_file)
