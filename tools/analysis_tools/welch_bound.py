"""QueryOpt's Figure 3: the Welch bound over the code dimension, and the
largest cross-class cosine that trained models reach.

    python tools/analysis_tools/welch_bound.py [--num-classes C [C ...]] \
        [--dims D [D ...]] [CONFIG CHECKPOINT ...] --out-dir DIR

Draws ``sqrt((M - d) / (d (M - 1)))`` (0 for M <= d), the least possible
largest |cosine| of M unit vectors in R^d, over ``--dims`` (default 1..128)
for each class number M of ``--num-classes`` (default the five datasets'
100, 101, 200, 292 and 555 classes). Each CONFIG CHECKPOINT pair (several
allowed, e.g. with and without the auxiliary branch) is measured as the
paper's Eq. 8 reads: one random image of each class of ``--split``
(default ``database``, the training split read with the test transforms:
the paper's "training samples"; ``query`` is the test split), repeated
``--draws`` times with ``--seed``, and the largest |cosine| between the
relaxed codes of two classes, at the code length k (branch 0, the
inference codes) and, for a head with auxiliary branches, at the k * N
relaxed bits that training decodes. The split's class number gets a curve
if ``--num-classes`` lacks it. Writes ``DIR/welch_bound.png`` and
``DIR/welch_bound.json`` (the curves, each model's draws, their image
indices and values); see docs/experiments.md.
"""
import os.path as osp
import sys

# tools/: openmp_env, first, before torch loads OpenMP (docs/speed.md), and
# the dataloaders of encode.py.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: E402,F401  # isort: skip
import argparse  # noqa: E402
import json  # noqa: E402
from typing import List, Optional  # noqa: E402

import torch  # noqa: E402

import mmqueryopt  # noqa: E402,F401  (registers every module)
from encode import build_dataloader  # noqa: E402
from mmqueryopt.analysis.welch import (bound_curves,  # noqa: E402
                                       measure_model, plot_welch)
from mmqueryopt.engine.cli import (add_cfg_options,  # noqa: E402
                                   add_loader_args,
                                   exit_on_user_error, read_config,
                                   user_error_message)
from mmqueryopt.fileio import atomic_write  # noqa: E402
from mmqueryopt.retrieval.encoder import build_encoder  # noqa: E402

# The class numbers of the paper's five datasets (Aircraft, Food-101, CUB,
# VegFru, NABirds); Figure 3's own legend is not in the text.
PAPER_NUM_CLASSES = (100, 101, 200, 292, 555)
DEFAULT_DIMS = tuple(range(1, 129))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='The Welch bound over the code dimension for some class '
        'numbers, beside the largest cross-class cosine of trained models '
        '(QueryOpt Figure 3); writes welch_bound.png and welch_bound.json')
    parser.add_argument(
        'models', nargs='*', metavar='CONFIG CHECKPOINT',
        help='pairs of a config and its checkpoint (loaded with '
        'weights_only=True), each measured and labelled by config name')
    parser.add_argument(
        '--num-classes', nargs='+', default=PAPER_NUM_CLASSES,
        metavar='C', help='class numbers M, one curve each (default: '
        f'{" ".join(map(str, PAPER_NUM_CLASSES))}, the paper\'s datasets)')
    parser.add_argument(
        '--dims', nargs='+', default=DEFAULT_DIMS, metavar='D',
        help='code dimensions d of the curves (default: 1 to 128)')
    parser.add_argument('--out-dir', required=True,
                        help='where welch_bound.png and .json go')
    parser.add_argument(
        '--split', choices=['database', 'query'], default='database',
        help="images the codes are measured on: 'database', the training "
        "split read with the test transforms (the paper's training "
        "samples; default), or 'query', the test split")
    parser.add_argument(
        '--draws', type=int, default=10,
        help='draws of one random image per class (default 10)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the draws (default 0)')
    parser.add_argument(
        '--device',
        help="e.g. 'cpu' or 'cuda:0' (default: CUDA when available)")
    add_loader_args(parser)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    # A list option takes every word after it: in the order,
    # `--dims 1 2 3 CONFIG CHECKPOINT`, the pairs follow the numbers.
    for option in ('num_classes', 'dims'):
        values, extra = split_numbers(getattr(args, option),
                                      '--' + option.replace('_', '-'))
        setattr(args, option, values)
        args.models += extra
    check_args(args)
    return args


def split_numbers(words, option: str) -> tuple:
    """A list option's leading integers, and the words after them.

    Raises:
        SystemExit: The option has no integer first.
    """
    values = []
    for n, word in enumerate(words):
        try:
            values.append(int(word))
        except ValueError:
            if not values:
                raise SystemExit(f'error: {option} takes integers; got '
                                 f'{word!r}') from None
            return values, list(words[n:])
    return values, []


def check_args(args: argparse.Namespace) -> None:
    """One line and status 1 for a bad number, before any work."""
    bad_dims = [d for d in args.dims if d < 1]
    if bad_dims:
        raise SystemExit(f'error: --dims must be at least 1; got '
                         f'{bad_dims[0]}')
    bad_classes = [c for c in args.num_classes if c < 2]
    if bad_classes:
        raise SystemExit(f'error: --num-classes must be at least 2 (a '
                         f'cosine needs a pair); got {bad_classes[0]}')
    if len(args.models) % 2:
        raise SystemExit(
            f'error: models come as CONFIG CHECKPOINT pairs; got '
            f'{len(args.models)} paths ({" ".join(args.models)})')
    if args.draws < 1:
        raise SystemExit(f'error: --draws must be at least 1; got '
                         f'{args.draws}')


def model_pairs(args: argparse.Namespace) -> List[dict]:
    """Each pair's config (read and checked), checkpoint and label; a
    missing checkpoint is an error before any model is built."""
    pairs = []
    for config, checkpoint in zip(args.models[::2], args.models[1::2]):
        cfg = read_config(config, args.cfg_options, args.allow_new_keys)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'checkpoint file not found: {checkpoint}')
        pairs.append(dict(config=config, checkpoint=checkpoint, cfg=cfg,
                          label=osp.splitext(osp.basename(config))[0]))
    labels = [pair['label'] for pair in pairs]
    for pair in pairs:
        if labels.count(pair['label']) > 1:
            pair['label'] += f' ({osp.basename(pair["checkpoint"])})'
    return pairs


def measure(pair: dict, args: argparse.Namespace) -> dict:
    """One model's measurement (:func:`measure_model`) with its source."""
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_encoder(pair['cfg'], pair['checkpoint'], device)
    loader = build_dataloader(
        pair['cfg'], argparse.Namespace(**vars(args), images=None))
    print(f'{pair["label"]}: {args.draws} draws of one {args.split} image '
          'per class', file=sys.stderr)
    result = measure_model(model, loader, args.draws, args.seed,
                           progress=not args.no_progress)
    return dict(label=pair['label'], config=pair['config'],
                checkpoint=pair['checkpoint'],
                head=type(model.head).__name__, split=args.split, **result)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns what it writes to ``welch_bound.json``."""
    args = parse_args(argv)
    try:
        with exit_on_user_error():
            pairs = model_pairs(args)
            models = [measure(pair, args) for pair in pairs]
    except ValueError as error:
        # A checkpoint of another configuration, a split of one class.
        raise SystemExit(f'error: {user_error_message(error)}') from None
    # Each model's class number gets its curve, once.
    num_classes = list(dict.fromkeys(
        list(args.num_classes) + [m['num_classes'] for m in models]))
    dims = list(args.dims)
    report = dict(
        formula='sqrt(max(M - d, 0) / (d * (M - 1)))',
        dims=dims,
        curves=bound_curves(num_classes, dims),
        models=models)
    png = osp.join(args.out_dir, 'welch_bound.png')
    plot_welch(dims, report['curves'], models, png)
    path = osp.join(args.out_dir, 'welch_bound.json')
    atomic_write(path, json.dumps(report, indent=1).encode())
    for model in models:
        for width in model['widths']:
            mu, rms = width['max_cosine'], width['rms_cosine']
            print(f'{model["label"]}: {width["name"]} d = {width["dims"]}, '
                  f'M = {model["num_classes"]}: largest cross-class |cos| '
                  f'{mu["mean"]:.4f} (draws {mu["min"]:.4f}..'
                  f'{mu["max"]:.4f}), rms {rms["mean"]:.4f}, Welch bound '
                  f'{width["bound"]:.4f}')
    print(f'-> {png}, {path}', file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
