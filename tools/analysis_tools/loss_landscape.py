"""Draw the loss landscape around a trained model (QueryOpt Figures 4, 12;
Li et al. 2018).

``python tools/analysis_tools/loss_landscape.py CONFIG CHECKPOINT --out-dir
DIR [--grid N] [--range R] [--num-batches B] [--seed S]`` evaluates the
model's training loss (with the checkpoint's learned database) at
``theta + alpha * d1 + beta * d2`` for alpha, beta on an N x N grid over
[-R, R], d1 and d2 being seeded, filter-normalised Gaussian directions
(:mod:`mmqueryopt.analysis.loss_landscape` says how), on B fixed batches
of training images. It writes ``<name>_contour.png``,
``<name>_surface.png`` and ``<name>.json`` (the axes, every loss term on
the grid, the centre's losses and the settings), ``<name>`` being
``loss_landscape_<config name>`` unless ``--name`` says otherwise: run it
once per checkpoint (e.g. per code length) into one folder to compare.
A grid whose values and copies of the weights would not fit in the free
memory is refused before any work.
"""
import os.path as osp
import sys

# tools/: openmp_env, first, before torch loads OpenMP (docs/speed.md).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: E402,F401  # isort: skip
import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import List, Optional  # noqa: E402

import torch  # noqa: E402

import mmqueryopt  # noqa: E402,F401  (registers every module)
from mmqueryopt.analysis.loss_landscape import (  # noqa: E402
    BN_MODES, available_memory, batch_losses, check_memory, draw_batches,
    grid_axis, landscape_mode, load_batches, loss_surface, memory_estimate,
    plot_contour, plot_surface, random_direction,
    trainable_weights, training_dataset)
from mmqueryopt.datasets import BrokenImageError  # noqa: E402
from mmqueryopt.fileio import atomic_write  # noqa: E402
from mmqueryopt.engine.cli import (  # noqa: E402
    add_encoder_args, encoder_from_args, exit_on_user_error,
    user_error_message)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Loss landscape around trained weights along two '
        'filter-normalised random directions (Li et al. 2018)')
    add_encoder_args(parser, 'checkpoint file (loaded with '
                     'weights_only=True)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--grid', type=int, default=21,
        help='points per axis (default 21; odd puts the trained weights '
        'on the grid)')
    parser.add_argument(
        '--range', type=float, default=1.0, dest='span',
        help='alpha and beta run over [-RANGE, RANGE] (default 1)')
    parser.add_argument(
        '--num-batches', type=int, default=4,
        help='fixed training batches the loss is averaged over (default 4)')
    parser.add_argument(
        '--batch-size', type=int,
        help="images per batch (default: the training dataloader's)")
    parser.add_argument(
        '--seed', type=int, default=0,
        help='seed of the directions and of the batches (default 0)')
    parser.add_argument(
        '--bn-mode', choices=BN_MODES, default='eval',
        help="'eval': BatchNorm on its running statistics, as Li et al. "
        "(default); 'train': on each batch's statistics, as in training")
    parser.add_argument(
        '--levels', type=int, default=20, help='contour levels (default 20)')
    parser.add_argument(
        '--name', help='file name stem (default: loss_landscape_<config '
        'name>)')
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse impossible settings with one line, before any work."""
    if args.grid < 2:
        raise SystemExit(f'error: --grid {args.grid}: needs at least 2 '
                         f'points per axis')
    if not args.span > 0:
        raise SystemExit(f'error: --range {args.span}: must be positive')
    if args.num_batches < 1:
        raise SystemExit(f'error: --num-batches {args.num_batches}: must be '
                         f'at least 1')
    if args.batch_size is not None and args.batch_size < 1:
        raise SystemExit(f'error: --batch-size {args.batch_size}: must be '
                         f'at least 1')
    if args.levels < 2:
        raise SystemExit(f'error: --levels {args.levels}: must be at least '
                         f'2')


def prepare(args: argparse.Namespace) -> tuple:
    """Model, dataset, batches' rows and the moving weights; the memory
    check before any batch is loaded."""
    cfg, model = encoder_from_args(args)
    with exit_on_user_error():
        dataset = training_dataset(cfg)
        labels = torch.as_tensor(dataset.get_gt_labels(), dtype=torch.long)
        database = model.database
        if database.num_database:
            database.check_prepared(labels)
        elif database.holds_codes:
            raise ValueError(
                f'checkpoint {args.checkpoint!r} holds no learned database '
                f'(model.database is empty): the loss needs the one '
                f'training learned; use a checkpoint written by '
                f'tools/train.py')
        else:
            # A memory that training fills: it starts empty there too.
            database.prepare(labels)
        batch_size = args.batch_size or cfg.train_dataloader.batch_size
        rows = draw_batches(len(dataset), args.num_batches, batch_size,
                            args.seed)
        weights = trainable_weights(model)
        image = dataset[rows[0][0]]['inputs']
        input_bytes = len(rows) * batch_size * image.numel() * 4
        check_memory(memory_estimate(weights, input_bytes, args.grid),
                     available_memory(str(next(model.parameters()).device)),
                     args.grid)
    return cfg, model, dataset, rows, weights


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns the report written to ``<name>.json``."""
    args = parse_args(argv)
    check_args(args)
    name = args.name or ('loss_landscape_' +
                         osp.splitext(osp.basename(args.config))[0])
    try:
        cfg, model, dataset, rows, weights = prepare(args)
        batches = load_batches(model, dataset, rows)
    except (BrokenImageError, ValueError) as error:
        raise SystemExit(f'error: {user_error_message(error)}') from None
    landscape_mode(model, args.bn_mode)
    generator = torch.Generator().manual_seed(args.seed)
    directions = (random_direction(weights, generator),
                  random_direction(weights, generator))
    alphas = betas = grid_axis(args.grid, args.span)
    centre = batch_losses(model, batches)
    bar = None
    if not args.no_progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(args.grid * args.grid)
    start = time.time()
    surface = loss_surface(model, batches, directions, alphas, betas,
                           None if bar is None else bar.update)
    if bar is not None:
        print()
    report = dict(
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint),
        code_length=int(model.code_length),
        relaxed_dims=int(model.head.relaxed_dims),
        seed=args.seed, grid=args.grid, range=args.span,
        bn_mode=args.bn_mode,
        num_batches=len(rows), batch_size=len(rows[0]),
        images=rows,
        moving_parameters=int(sum(w.numel() for w in weights.values())),
        moving_tensors=len(weights),
        alphas=alphas, betas=betas,
        centre=centre,
        values={term: grid.tolist() for term, grid in surface.items()},
        layout='values[term][i][j] is the loss at betas[i], alphas[j]',
        seconds=round(time.time() - start, 3))
    out = osp.join(args.out_dir, name)
    title = (f'{osp.basename(args.config)}: {model.code_length} bits, '
             f'{model.head.relaxed_dims} relaxed')
    plot_contour(alphas, betas, surface['loss'], title,
                 out + '_contour.png', args.levels)
    plot_surface(alphas, betas, surface['loss'], title, out + '_surface.png')
    atomic_write(out + '.json', json.dumps(report, indent=1).encode())
    print(f'{args.grid}x{args.grid} loss landscape (centre loss '
          f'{centre["loss"]:.6g}) -> {out}_contour.png, _surface.png, .json',
          file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
