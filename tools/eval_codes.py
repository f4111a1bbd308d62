"""Retrieval metrics offline, from codes on disk.

Every input is read by :func:`mmqueryopt.retrieval.read_codes_file` (the
reader of ``tools/analysis_tools/code_stats.py``), so any layout it reads
works here, without unpickling anything:

* ``python tools/eval_codes.py query.npz database.npz``: two files of one
  set of codes each (``tools/encode.py --out``); both must hold labels and
  the same code length, and come from the same model
  (:func:`check_same_model`).
* ``python tools/eval_codes.py codes.npz``: one file with query and
  database sides (``tools/test.py --out``), both with labels.
* ``python tools/eval_codes.py --query-codes q.npy --query-labels ql.npy
  --db-codes d.npy --db-labels dl.npy``: ``(N, nbits)`` codes in {-1, +1},
  {0, 1} or bool; labels as class ids ``(N,)`` or multi-hot ``(N, C)``.

The metrics are :func:`evaluate_retrieval`'s, printed as HammingMAP reports
them (``retrieval/mAP`` ...), so a test run and this tool agree.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmqueryopt.evaluation.functional import evaluate_retrieval
from mmqueryopt.fileio import atomic_write
from mmqueryopt.retrieval import (Codes, CodesFileError, check_same_model,
                                  read_codes_file, read_labels)


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


def _exists(path: str, what: str) -> str:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    return path


def _load_pair(query: str, database: str) -> Tuple[Codes, Codes]:
    """The codes of two files of one set of codes each, of one model."""
    q, d = (read_codes_file(_exists(path, 'codes'), need_labels=True).side()
            for path in (query, database))
    if q.nbits != d.nbits:
        raise ValueError(
            f'code lengths differ: {query!r} has {q.nbits} bits, {database!r} '
            f'has {d.nbits}')
    check_same_model(d.meta, q.meta, repr(database))
    return q, d


def _load_sides(path: str) -> Tuple[Codes, Codes]:
    """The query and database codes of one file with both sides."""
    file = read_codes_file(_exists(path, 'codes'), need_labels=True)
    if '' in file.sides:
        raise ValueError(
            f'{path!r} holds one set of codes (a {file.layout}): give the '
            f"queries and the database, 'QUERY.npz DATABASE.npz'")
    return file.side('query'), file.side('database')


def _load_arrays(args: argparse.Namespace) -> Tuple[Codes, Codes]:
    """Codes and labels of four ``.npy`` files."""
    sides = []
    for codes_path, labels_path, what in (
            (args.query_codes, args.query_labels, 'query'),
            (args.db_codes, args.db_labels, 'database')):
        codes = read_codes_file(_exists(codes_path, f'{what} codes')).side()
        codes.labels = read_labels(
            _exists(labels_path, f'{what} labels'), len(codes.packed),
            codes_path)
        sides.append(codes)
    if sides[0].nbits != sides[1].nbits:
        raise ValueError(
            f'code lengths differ: {args.query_codes!r} has '
            f'{sides[0].nbits} bits, {args.db_codes!r} has {sides[1].nbits}')
    return tuple(sides)


def load_inputs(args: argparse.Namespace) -> Tuple[Codes, Codes]:
    """The query and database codes, with their labels."""
    if len(args.files) == 2:
        return _load_pair(*args.files)
    if len(args.files) == 1:
        return _load_sides(args.files[0])
    return _load_arrays(args)


def evaluate(args: argparse.Namespace) -> Dict[str, object]:
    """The metrics, keyed as HammingMAP reports them."""
    query, database = load_inputs(args)
    metrics = evaluate_retrieval(
        query.packed, database.packed, query.labels, database.labels,
        map_topk=(None, *args.map_topk), precision_k=args.precision_k,
        recall_k=args.recall_k, radius=args.radius,
        # As HammingMAP: `mAP` (index order) is always reported.
        tie_break=tuple(dict.fromkeys(('index', *args.tie_break))),
        authors_protocol=args.authors_protocol,
        nbits=query.nbits)
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
