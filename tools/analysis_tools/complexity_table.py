"""Every method's parameters and MACs beside the QueryOpt paper's Table 4.

    python tools/analysis_tools/complexity_table.py [--out FILE.md]
        [--methods METHOD [METHOD ...]]

One config a method (``configs/<method>/<method>_cub_<k>bit.py``, k the code
length of the paper's count, 12 bits where Table 4 has no row), counted as
``get_flops.py`` counts (products only, one 224 x 224 image, inference in
eval mode and training in train mode). Prints the Markdown table; ``--out
FILE.md`` also writes it there with the numbers as ``FILE.json`` and
``FILE.csv`` beside it. Each model costs a few seconds on a CPU.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

from mmqueryopt.analysis.complexity_table import (complexity_rows,
                                                  method_config, to_csv,
                                                  to_markdown,
                                                  toolbox_methods)
from mmqueryopt.fileio import atomic_write

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and training / inference MACs of every '
        "method, beside the QueryOpt paper's Table 4")
    parser.add_argument(
        '--out', help='Markdown file to write; FILE.json and FILE.csv with '
        'the numbers go beside it')
    parser.add_argument(
        '--methods', nargs='+', metavar='METHOD',
        help='method folders to count (default: every method)')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> List[str]:
    """The methods to count, after checking the arguments (before any
    model is built).

    Raises:
        SystemExit: One line naming the bad method or output path.
    """
    known = toolbox_methods(REPO)
    methods = args.methods or known
    for method in methods:
        if method not in known:
            raise SystemExit(f'error: --methods: no method {method!r} '
                             f'(configs/{method}/metafile.yml); known: '
                             f'{", ".join(known)}')
        config = method_config(REPO, method)
        if not osp.isfile(osp.join(REPO, config)):
            raise SystemExit(f'error: {method} has no config {config} to '
                             f'count')
    if args.out:
        for path in output_files(args.out):
            if osp.isdir(path):
                raise SystemExit(f'error: --out: {path} is a folder; give '
                                 f'a file name such as table4.md')
    return methods


def output_files(out: str) -> List[str]:
    """The Markdown file and its JSON and CSV siblings."""
    stem = osp.splitext(out)[0]
    return [out, stem + '.json', stem + '.csv']


def main(argv: Optional[List[str]] = None) -> list:
    """Run the tool; returns the rows."""
    args = parse_args(argv)
    methods = check_args(args)
    rows = complexity_rows(REPO, methods)
    table = to_markdown(rows)
    if args.out:
        markdown, json_file, csv_file = output_files(args.out)
        atomic_write(json_file, json.dumps(rows, indent=1).encode())
        atomic_write(csv_file, to_csv(rows).encode())
        atomic_write(markdown, table.encode())
        print(f'wrote {markdown}, {json_file}, {csv_file}', file=sys.stderr)
    print(table, end='')
    return rows


if __name__ == '__main__':
    main()
