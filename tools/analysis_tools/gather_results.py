"""The best mAP of every training run, in the papers' table layouts.

``python tools/analysis_tools/gather_results.py work_dirs/ --out
results.md`` finds every run under the folder (``*/vis_data/scalars.json``),
takes the best ``retrieval/mAP`` of each (method, dataset, code length)
over all its runs and evaluated rounds, and writes Markdown: the list of
runs with the papers' Table 1 mAP and the difference in points, then the
QueryOpt paper's layouts, ours beside the paper's: Table 1 (one table a
dataset), Table 2 (the ``queryopt_ablation-*`` runs: base, +S, +S+Q,
+S+Q+A) and Table 3 (the ``queryopt_branches-<N>_*`` runs). Methods,
variants (backbones, ablation rows, branch counts) and datasets come from
the work dir names, MMEngine's default ``work_dirs/<config name>`` (e.g.
``queryopt_ablation-s_cub_12bit``). ``--table`` picks tables, ``--dataset``
one dataset (Table 2 compares its rows on one), ``--out-csv`` writes the
tables' numbers a cell a line, ``--out-json`` the runs.
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

from mmqueryopt.analysis.results import (TABLES, gather, paper_tables,
                                         tables_to_csv, tables_to_markdown,
                                         to_markdown)
from mmqueryopt.fileio import atomic_write


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Best mAP per method, dataset and code length across '
        "training runs, in the papers' table layouts beside their numbers")
    parser.add_argument('root', help='folder of work dirs (e.g. work_dirs/)')
    parser.add_argument('--out', help='Markdown file to write')
    parser.add_argument('--out-csv',
                        help="write the tables' numbers as CSV (a line a "
                        'cell: table, dataset, row, column, ours, paper...)')
    parser.add_argument('--out-json', help='write the runs as JSON too')
    parser.add_argument(
        '--table', nargs='+', choices=TABLES,
        help="what to lay out: 'runs' (every config's best run) and the "
        "QueryOpt paper's Tables 1, 2 (ablation), 3 (branches); default: "
        'all that have runs')
    parser.add_argument('--dataset',
                        help='only the runs of this dataset (e.g. cub)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> list:
    """Run the tool; returns the runs' rows."""
    args = parse_args(argv)
    if not osp.isdir(args.root):
        raise SystemExit(f'error: {args.root!r} is not a folder')
    for flag in ('out', 'out_csv', 'out_json'):
        path = getattr(args, flag)
        if path and osp.isdir(path):
            raise SystemExit(f'error: --{flag.replace("_", "-")}: {path} is '
                             f'a folder; give a file name')
    try:
        rows = gather(args.root)
    except ValueError as error:
        raise SystemExit(f'error: {error}') from None
    if not rows:
        raise SystemExit(f'error: no training run with a retrieval/mAP '
                         f'evaluation under {args.root!r} (looked for '
                         f'*/vis_data/scalars.json)')
    if args.dataset:
        found = sorted({row['dataset'] for row in rows})
        rows = [row for row in rows if row['dataset'] == args.dataset]
        if not rows:
            raise SystemExit(f'error: --dataset {args.dataset}: no run of it '
                             f'under {args.root!r} (datasets: '
                             f'{", ".join(found)})')
    asked = args.table or TABLES
    try:
        tables = paper_tables(rows, asked)
    except ValueError as error:
        raise SystemExit(f'error: {error}') from None
    for name, variant in (('2', 'ablation'), ('3', 'branches')):
        # Asked for by name, a table without its runs is an error, not an
        # empty file; by default only the tables with runs are written.
        if args.table and name in args.table and not any(
                t.number == name for t in tables):
            raise SystemExit(
                f'error: --table {name} needs queryopt_{variant}-* runs; '
                f'none under {args.root!r}')
    parts = [to_markdown(rows)] if 'runs' in asked else []
    if tables:
        parts.append(tables_to_markdown(tables))
    text = '\n'.join(parts)
    if args.out_json:
        atomic_write(args.out_json, json.dumps(rows, indent=1).encode())
    if args.out_csv:
        atomic_write(args.out_csv, tables_to_csv(tables).encode())
    if args.out:
        atomic_write(args.out, text.encode())
    print(text, end='')
    return rows


if __name__ == '__main__':
    main()
