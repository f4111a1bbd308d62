"""Draw where a model's bits look: its attention maps over images.

``python tools/visualize_attention.py CONFIG CHECKPOINT --image IMG
[--image ...] [--bits 0 3 5] --out-dir DIR`` writes one PNG per image: the
image as the model saw it (after the config's test transforms), then each
chosen map as a heatmap over it, titled with its bit's value when the model
has one map per bit. The maps come from ``HashRetriever.attention_maps``
(QueryOpt: each bit's query's cross-attention over both token levels; any
method whose neck or head defines ``attention_maps``); a model without
them is refused with a one-line message.
"""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import torch
from mmengine.dataset import pseudo_collate

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.analysis.attention import (map_titles, model_input_image,
                                           save_attention_overlay)
from mmqueryopt.datasets import BrokenImageError
from mmqueryopt.engine.cli import add_encoder_args, encoder_from_args
from mmqueryopt.retrieval.encoder import ImageListDataset


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Overlay a model's attention maps (one per bit or "
        'descriptor) on images')
    add_encoder_args(parser, 'checkpoint file (loaded with '
                     'weights_only=True)')
    parser.add_argument(
        '--image', action='append', required=True,
        help='image file; repeat for more images')
    parser.add_argument(
        '--bits', type=int, nargs='+',
        help='maps to draw (bit numbers when the model has one map per '
        'bit; default: all)')
    parser.add_argument('--out-dir', required=True, help='folder of PNGs')
    parser.add_argument(
        '--thumb-size', type=int, default=128, help='cell side (px)')
    parser.add_argument('--ncols', type=int, default=7, help='cells per row')
    parser.add_argument(
        '--alpha', type=float, default=0.5, help='heatmap opacity')
    parser.add_argument(
        '--interpolation', default='bilinear',
        help="heatmap interpolation ('nearest' shows the token cells)")
    return parser.parse_args(argv)


def attention_of(model, batch: dict):
    """Maps, relaxed bits and the preprocessed batch of one image.

    Returns:
        tuple: ``(maps, relaxed)``: (1, M, h, w) maps, (1, k) relaxed bits.
    """
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        try:
            maps = model.attention_maps(data['inputs'])
        except AttributeError as error:
            raise ValueError(
                f'this model has no attention maps ({error}); only '
                f'methods whose neck or head defines attention_maps can be '
                f'drawn') from None
        relaxed = model.extract_feat(data['inputs'])[:, :model.code_length]
    return maps, relaxed


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Run the tool; returns the PNGs written."""
    args = parse_args(argv)
    try:
        cfg, model = encoder_from_args(args)
        for path in args.image:
            if not osp.isfile(path):
                raise FileNotFoundError(f'--image not found: {path}')
        dataset = ImageListDataset([osp.abspath(p) for p in args.image],
                                   cfg.test_dataloader.dataset.pipeline)
        to_rgb = bool(getattr(model.data_preprocessor, 'to_rgb', False))
        os.makedirs(args.out_dir, exist_ok=True)
        written = []
        for n in range(len(dataset)):
            packed = dataset[n]
            maps, relaxed = attention_of(model, pseudo_collate([packed]))
            maps = maps[0].cpu().numpy()
            chosen = (list(range(len(maps))) if args.bits is None
                      else args.bits)
            bad = [j for j in chosen if not 0 <= j < len(maps)]
            if bad:
                raise ValueError(f'--bits {bad} out of range: the model has '
                                 f'{len(maps)} maps (0..{len(maps) - 1})')
            titles = map_titles(len(maps), model.code_length, chosen,
                                relaxed[0].tolist())
            stem = osp.splitext(osp.basename(args.image[n]))[0]
            out_file = osp.join(args.out_dir, f'{n:03d}_{stem}.png')
            save_attention_overlay(
                out_file, model_input_image(packed['inputs'], to_rgb),
                maps[chosen], titles, args.thumb_size, args.ncols,
                args.alpha, args.interpolation)
            written.append(out_file)
    except (FileNotFoundError, BrokenImageError, ValueError) as error:
        raise SystemExit(f'error: {error}') from None
    print(f'{len(written)} attention figures -> {args.out_dir}',
          file=sys.stderr)
    return written


if __name__ == '__main__':
    main()
