"""One table of the best mAP of every training run, beside the papers'.

``python tools/analysis_tools/gather_results.py work_dirs/ --out
results.md`` finds every run under the folder (``*/vis_data/scalars.json``),
takes the best ``retrieval/mAP`` of each (method, dataset, code length)
over all its runs and evaluated rounds, and writes a Markdown table with
the papers' Table 1 mAP and the difference in points. Methods, variants
(backbones) and datasets come from the work dir names, MMEngine's default
``work_dirs/<config name>`` (e.g. ``queryopt_cub_12bit``).
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

from mmqueryopt.analysis.results import gather, to_markdown
from mmqueryopt.fileio import atomic_write


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Best mAP per method, dataset and code length across '
        'training runs, beside the papers')
    parser.add_argument('root', help='folder of work dirs (e.g. work_dirs/)')
    parser.add_argument('--out', help='Markdown file to write')
    parser.add_argument('--out-json', help='write the rows as JSON too')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> list:
    """Run the tool; returns the rows."""
    args = parse_args(argv)
    if not osp.isdir(args.root):
        raise SystemExit(f'error: {args.root!r} is not a folder')
    try:
        rows = gather(args.root)
    except ValueError as error:
        raise SystemExit(f'error: {error}') from None
    if not rows:
        raise SystemExit(f'error: no training run with a retrieval/mAP '
                         f'evaluation under {args.root!r} (looked for '
                         f'*/vis_data/scalars.json)')
    table = to_markdown(rows)
    if args.out:
        atomic_write(args.out, table.encode())
    if args.out_json:
        atomic_write(args.out_json, json.dumps(rows, indent=1).encode())
    print(table, end='')
    return rows


if __name__ == '__main__':
    main()
