"""Are the codes healthy? Balance, correlation and distances of bits.

``python tools/analysis_tools/code_stats.py CODES.npz [--plot DIR]
[--out-json FILE]`` prints a JSON summary: the fraction of +1 per bit, the
bits' correlation matrix, the fraction of distinct codes, with labels the
same-class and other-class Hamming distance histograms, and with relaxed
codes the quantisation error. ``--plot`` draws ``balance.png``,
``correlation.png`` and ``hamming.png``. CODES.npz is any codes file
(:func:`mmqueryopt.retrieval.read_codes_file`, the reader of
``tools/eval_codes.py``): ``tools/encode.py --out``, ``tools/test.py --out``
(``--side`` query, the default, or database),
``tools/visualize_bits.py --save-relaxed``, or an ``.npy`` of codes.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmqueryopt.analysis.code_stats import (MAX_PAIR_ITEMS, code_statistics,
                                            dumps, plot_code_statistics)
from mmqueryopt.fileio import atomic_write
from mmqueryopt.retrieval import CodesFileError, read_codes_file


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Bit balance, bit correlation, Hamming distance '
        'histograms and quantisation error of a codes file')
    parser.add_argument('codes', help='codes file (.npz of tools/encode.py, '
                        'tools/test.py --out or --save-relaxed; or .npy)')
    parser.add_argument(
        '--side', choices=['query', 'database'],
        help='which codes of a file with both sides (default: query)')
    parser.add_argument('--plot', metavar='DIR', help='write PNG plots here')
    parser.add_argument('--out-json', help='write the summary here too')
    parser.add_argument(
        '--max-pair-items', type=int, default=MAX_PAIR_ITEMS,
        help='histograms count the pairs of at most this many items (a '
        f'seeded random subset beyond; default {MAX_PAIR_ITEMS})')
    args = parser.parse_args(argv)
    if args.max_pair_items < 2:
        parser.error('--max-pair-items must be at least 2')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns the summary."""
    args = parse_args(argv)
    try:
        file = read_codes_file(args.codes)
        side = args.side or (None if '' in file.sides else 'query')
        codes = file.side(side)
    except (FileNotFoundError, CodesFileError) as error:
        raise SystemExit(f'error: {error}') from None
    stats = code_statistics(codes.signs(), codes.labels, codes.relaxed,
                            args.max_pair_items)
    stats['source'] = dict(file=args.codes, layout=file.layout, side=side)
    text = dumps(stats)
    if args.out_json:
        atomic_write(args.out_json, text.encode())
    print(text)
    if args.plot:
        title = osp.splitext(osp.basename(args.codes))[0]
        for path in plot_code_statistics(stats, args.plot, title):
            print(path, file=sys.stderr)
    return stats


if __name__ == '__main__':
    main()
