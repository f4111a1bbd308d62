"""Compare runs as curves: precision-recall and precision@N.

``python tools/analysis_tools/plot_curves.py RUN [RUN ...] --out pr.png``
draws, for each evaluation dump (``tools/test.py --out``, or HammingMAP's
``dump_file``; a folder stands for every dump in it), the precision-recall
curve over Hamming radii 0..k that the dump holds and the precision of the
top N (ties in database order, as ``mAP`` ranks them), all runs on one
figure with a legend. Runs of different code lengths are refused.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import List, Optional

from mmqueryopt.analysis.curves import (check_same_length, default_ns,
                                        load_dump, plot_curves,
                                        precision_at_n, run_names)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Precision-recall and precision@N curves of several '
        'runs on one figure')
    parser.add_argument(
        'runs', nargs='+',
        help='evaluation dumps (.npz), or folders of them')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument(
        '--labels', nargs='+', help='legend names, one per dump')
    parser.add_argument(
        '--ns', type=int, nargs='+',
        help='N of precision@N (default: 1 and 20 steps up to --max-n)')
    parser.add_argument('--max-n', type=int, default=1000,
                        help='largest default N (default 1000)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--out-json', help='write the curves as JSON')
    return parser.parse_args(argv)


def dump_files(runs: List[str]) -> List[str]:
    """The dumps named: files as given, folders' ``*.npz`` sorted."""
    files = []
    for run in runs:
        if osp.isdir(run):
            found = sorted(glob.glob(osp.join(run, '*.npz')))
            if not found:
                raise FileNotFoundError(f'no .npz dump in folder {run!r}')
            files.extend(found)
        elif osp.isfile(run):
            files.append(run)
        else:
            raise FileNotFoundError(f'no such dump or folder: {run!r}')
    return files


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the tool; returns the curves drawn."""
    args = parse_args(argv)
    try:
        files = dump_files(args.runs)
        names = args.labels or run_names(files)
        if len(names) != len(files):
            raise ValueError(f'{len(names)} --labels for {len(files)} '
                             f'dumps ({", ".join(files)})')
        dumps = [load_dump(f) for f in files]
        check_same_length(files, [d['nbits'] for d in dumps])
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'error: {error}') from None
    curves = []
    for path, name, dump in zip(files, names, dumps):
        ns = args.ns or default_ns(len(dump['database_codes']), args.max_n)
        curves.append(dict(
            name=name, file=path, nbits=dump['nbits'],
            pr_precision=dump['pr_precision'].tolist(),
            pr_recall=dump['pr_recall'].tolist(), ns=list(ns),
            precision_at_n=precision_at_n(dump, ns).tolist()))
    plot_curves(args.out, curves, names, args.title)
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(curves, f, indent=1)
    print(f'{len(curves)} runs -> {args.out}', file=sys.stderr)
    return curves


if __name__ == '__main__':
    main()
