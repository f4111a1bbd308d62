"""Show what each bit encodes: the images that set it most strongly to +1
and to -1, and the classes most associated with each value.

``python tools/visualize_bits.py CONFIG CHECKPOINT --split query --bits 0 1
--out-dir DIR`` encodes the split (the config's test split, or
``--split database``: its training split with the test transforms, as
``tools/encode.py`` reads them) and writes ``bit_<j>.png`` per bit (first
row: the ``--top`` images with the largest relaxed value of bit j among
those coded +1; second row: the most negative among those coded -1, each
titled with its value and class) and ``bits.json`` (those images, the
bit's balance and the ``--top-classes`` classes with the largest fraction
of their images at each value). ``--save-relaxed FILE`` also keeps the
relaxed codes for ``tools/analysis_tools/code_stats.py``.
"""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

import numpy as np

import mmqueryopt  # noqa: F401  (registers every module)
from encode import build_dataloader
from mmqueryopt.analysis.bits import (class_association, relaxed_codes,
                                      save_bit_grid, strongest)
from mmqueryopt.datasets import BrokenImageError
from mmqueryopt.evaluation.functional.codes import sign
from mmqueryopt.engine.cli import (add_encoder_args, encoder_from_args,
                                   user_error_message)
from mmqueryopt.fileio import atomic_write
from mmqueryopt.retrieval import save_codes
from mmqueryopt.retrieval.encoder import model_meta, to_codes


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per bit, the images that set it most strongly to +1 '
        'and to -1, and the classes of each value')
    add_encoder_args(parser, 'checkpoint file (loaded with '
                     'weights_only=True)')
    parser.add_argument(
        '--split', choices=['query', 'database'], default='query',
        help="'query': the config's test split (default); 'database': its "
        'training split, read with the test transforms')
    parser.add_argument(
        '--bits', type=int, nargs='+', help='bits to show (default: all)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--top', type=int, default=8, help='images per value (default 8)')
    parser.add_argument(
        '--top-classes', type=int, default=3,
        help='classes listed per value (default 3)')
    parser.add_argument(
        '--thumb-size', type=int, default=96, help='cell side (px)')
    parser.add_argument(
        '--batch-size', type=int, help="default: the test dataloader's")
    parser.add_argument(
        '--num-workers', type=int, help="default: the test dataloader's")
    parser.add_argument(
        '--save-relaxed', metavar='FILE',
        help='also write a codes file (.npz) with the relaxed codes, for '
        'code_stats.py')
    args = parser.parse_args(argv)
    if args.top < 1 or args.top_classes < 1:
        parser.error('--top and --top-classes must be at least 1')
    args.images = None  # what encode.build_dataloader also serves
    return args


def bit_report(j: int, values: np.ndarray, labels, class_names, paths,
               args) -> dict:
    """The JSON entry of bit ``j`` and the rows of its grid."""
    plus = strongest(values, 1, args.top)
    minus = strongest(values, -1, args.top)
    binary = sign(values)
    entry = dict(bit=j, fraction_plus=float((binary > 0).mean()))
    for key, items in (('+1', plus), ('-1', minus)):
        entry[key] = dict(images=[
            dict(path=paths[i], value=float(values[i]),
                 label=None if labels is None else int(labels[i]))
            for i in items
        ])
    if labels is not None:
        for key, classes in class_association(binary, labels,
                                              args.top_classes).items():
            entry[key]['classes'] = [
                dict(label=c, name=_name(class_names, c), fraction=f)
                for c, f in classes
            ]
    return entry, plus, minus


def _name(class_names, label) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns the JSON written to ``bits.json``."""
    args = parse_args(argv)
    try:
        cfg, model = encoder_from_args(args)
        loader = build_dataloader(cfg, args)
        values, paths, labels = relaxed_codes(model, loader)
        chosen = (list(range(values.shape[1])) if args.bits is None
                  else args.bits)
        bad = [j for j in chosen if not 0 <= j < values.shape[1]]
        if bad:
            raise ValueError(f'--bits {bad} out of range: the codes have '
                             f'{values.shape[1]} bits')
    except (FileNotFoundError, BrokenImageError, ValueError) as error:
        raise SystemExit(f'error: {user_error_message(error)}') from None
    class_names = loader.dataset.metainfo.get('classes')
    names = ([''] * len(paths) if labels is None else
             [_name(class_names, int(c)) for c in labels])
    os.makedirs(args.out_dir, exist_ok=True)
    report = dict(split=args.split, num_images=len(paths),
                  nbits=int(values.shape[1]), bits=[])
    for j in chosen:
        entry, plus, minus = bit_report(j, values[:, j], labels,
                                        class_names, paths, args)
        report['bits'].append(entry)
        save_bit_grid(osp.join(args.out_dir, f'bit_{j:02d}.png'), paths,
                      plus, minus, values[:, j], names, args.top,
                      args.thumb_size)
    atomic_write(osp.join(args.out_dir, 'bits.json'),
                 json.dumps(report, indent=1).encode())
    if args.save_relaxed:
        # A codes file like tools/encode.py's, plus the relaxed values.
        codes = to_codes(sign(values), paths, labels,
                         model_meta(model, args.checkpoint, args.config))
        codes.relaxed = values
        save_codes(args.save_relaxed, codes)
    print(f'{len(chosen)} bits of {len(paths)} {args.split} images -> '
          f'{args.out_dir}', file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
