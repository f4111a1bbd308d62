"""Retrieval metrics offline, from codes on disk.

Three layouts, each read with ``allow_pickle=False``:

* ``python tools/eval_codes.py query.npz database.npz``: two codes files
  (``tools/encode.py --out``); both must hold labels and the same code
  length, and come from the same model (:func:`check_same_model`).
* ``python tools/eval_codes.py codes.npz``: one file from
  ``tools/test.py --out`` (HammingMAP's ``dump_file``: ``query_codes``,
  ``query_labels``, ``database_codes``, ``database_labels``).
* ``python tools/eval_codes.py --query-codes q.npy --query-labels ql.npy
  --db-codes d.npy --db-labels dl.npy``: ``(N, nbits)`` codes in {-1, +1}
  or {0, 1}; labels as class ids ``(N,)`` or multi-hot ``(N, C)``.

The metrics are :func:`evaluate_retrieval`'s, printed as HammingMAP reports
them (``retrieval/mAP`` ...), so a test run and this tool agree.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmqueryopt.evaluation.functional import evaluate_retrieval
from mmqueryopt.fileio import atomic_write
from mmqueryopt.retrieval import CodesFileError, check_same_model, load_codes

# The keys of a tools/test.py --out file.
DUMP_KEYS = ('query_codes', 'query_labels', 'database_codes',
             'database_labels')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compute retrieval metrics from codes files or .npy '
        'arrays (queries ranked against a database by Hamming distance)')
    parser.add_argument(
        'files',
        nargs='*',
        help='QUERY.npz DATABASE.npz (codes files of tools/encode.py), or '
        'one CODES.npz of tools/test.py --out')
    parser.add_argument('--query-codes', help='(Q, nbits) .npy codes')
    parser.add_argument(
        '--query-labels', help='(Q,) class ids or (Q, C) multi-hot .npy')
    parser.add_argument('--db-codes', help='(D, nbits) .npy codes')
    parser.add_argument(
        '--db-labels', help='(D,) class ids or (D, C) multi-hot .npy')
    parser.add_argument(
        '--map-topk', type=int, nargs='+', default=[],
        help='also report mAP@k for these k')
    parser.add_argument(
        '--precision-k', type=int, nargs='+', default=[],
        help='report P@k for these k')
    parser.add_argument(
        '--recall-k', type=int, nargs='+', default=[],
        help='report R@k for these k')
    parser.add_argument(
        '--radius', type=int, nargs='+', default=[],
        help='report P@r and R@r within these Hamming radii')
    parser.add_argument(
        '--tie-break', nargs='+', choices=['index', 'expected'],
        default=['index'],
        help="'index' (database order, as the metric ranks; always "
        "reported) and/or 'expected' (mean over random orders in ties)")
    parser.add_argument(
        '--authors-protocol', action='store_true',
        help="also report mAP_authors (the authors' routine)")
    parser.add_argument('--out-json', help='also write the metrics as JSON')
    args = parser.parse_args(argv)
    arrays = [args.query_codes, args.query_labels, args.db_codes,
              args.db_labels]
    if args.files and any(a is not None for a in arrays):
        parser.error('give codes files or --query-codes/... arrays, not both')
    if not args.files and not all(a is not None for a in arrays):
        missing = [
            name for name, a in zip(('--query-codes', '--query-labels',
                                     '--db-codes', '--db-labels'), arrays)
            if a is None
        ]
        parser.error('give QUERY.npz DATABASE.npz, one tools/test.py --out '
                     'file, or all four arrays (missing: '
                     f'{", ".join(missing)})')
    if len(args.files) > 2:
        parser.error(f'at most two codes files; got {len(args.files)}')
    return args


def _load_npy(path: str, what: str) -> np.ndarray:
    """One plain array; errors name the file and what it should hold."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    try:
        # allow_pickle=False: a crafted .npy can then run no code.
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f'{what} file {path!r}: cannot read it as a plain '
                         f'.npy array ({error})') from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f'{what} file {path!r}: expected one .npy array, '
                         f'got an .npz archive')
    return array


def _load_pair(query: str, database: str) -> Tuple[np.ndarray, ...]:
    """Codes and labels of two codes files of one model."""
    q, d = load_codes(query), load_codes(database)
    for path, codes in ((query, q), (database, d)):
        if codes.labels is None:
            raise CodesFileError(path, 'labels', 'missing: metrics need the '
                                 'labels of the queries and the database')
    if q.nbits != d.nbits:
        raise ValueError(
            f'code lengths differ: {query!r} has {q.nbits} bits, {database!r} '
            f'has {d.nbits}')
    check_same_model(d.meta, q.meta, repr(database))
    return q.packed, q.labels, d.packed, d.labels, q.nbits


def _load_dump(path: str) -> Tuple[np.ndarray, ...]:
    """Codes and labels of one tools/test.py --out file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'codes file not found: {path}')
    with np.load(path, allow_pickle=False) as archive:
        if 'codes' in archive.files and 'query_codes' not in archive.files:
            raise ValueError(
                f'{path!r} is a codes file of one gallery: give the queries '
                f"and the database, 'QUERY.npz DATABASE.npz'")
        missing = [key for key in DUMP_KEYS if key not in archive.files]
        if missing:
            raise ValueError(f'{path!r} is not a tools/test.py --out file: '
                             f'missing {", ".join(missing)}')
        return tuple(archive[key] for key in DUMP_KEYS) + (None, )


def load_inputs(args: argparse.Namespace) -> Tuple[np.ndarray, ...]:
    """``(query_codes, query_labels, db_codes, db_labels, nbits)``; nbits is
    None unless the codes are packed."""
    if len(args.files) == 2:
        return _load_pair(*args.files)
    if len(args.files) == 1:
        return _load_dump(args.files[0])
    q = _load_npy(args.query_codes, 'query codes')
    d = _load_npy(args.db_codes, 'database codes')
    if q.ndim == 2 and d.ndim == 2 and q.shape[1] != d.shape[1]:
        raise ValueError(
            f'code lengths differ: {args.query_codes!r} has {q.shape[1]} '
            f'bits, {args.db_codes!r} has {d.shape[1]}')
    return (q, _load_npy(args.query_labels, 'query labels'), d,
            _load_npy(args.db_labels, 'database labels'), None)


def evaluate(args: argparse.Namespace) -> Dict[str, object]:
    """The metrics, keyed as HammingMAP reports them."""
    query_codes, query_labels, db_codes, db_labels, nbits = load_inputs(args)
    metrics = evaluate_retrieval(
        query_codes, db_codes, query_labels, db_labels,
        map_topk=(None, *args.map_topk), precision_k=args.precision_k,
        recall_k=args.recall_k, radius=args.radius,
        # As HammingMAP: `mAP` (index order) is always reported.
        tie_break=tuple(dict.fromkeys(('index', *args.tie_break))),
        authors_protocol=args.authors_protocol,
        nbits=nbits)
    # HammingMAP's default prefix: the keys of a test run's log.
    return {f'retrieval/{key}': value for key, value in metrics.items()}


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    """Run the tool; returns the metrics it printed."""
    args = parse_args(argv)
    try:
        metrics = evaluate(args)
    except (FileNotFoundError, CodesFileError, ValueError) as error:
        raise SystemExit(f'error: {error}') from None
    for key, value in metrics.items():
        print(f'{key}: {value:.6f}' if isinstance(value, float)
              else f'{key}: {value}')
    if args.out_json:
        atomic_write(args.out_json,
                     json.dumps(metrics, indent=2).encode('utf-8'))
    return metrics


if __name__ == '__main__':
    main()
