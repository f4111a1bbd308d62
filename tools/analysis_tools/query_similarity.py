"""QueryOpt's Figure 8: how distinct the learned queries and the attribute
features they decode are.

    python tools/analysis_tools/query_similarity.py CONFIG CHECKPOINT \
        --out-dir DIR [--split query] [--examples 3]

Writes ``DIR/query_similarity.png``: (a) the pairwise cosine similarity of
the k learned queries (branch 0, the ones inference decodes), (b) that of
the k attribute features an image is decoded into (the decoder's output per
query after its final LayerNorm), averaged over every image of ``--split``
(default ``query``, the test split; ``database`` the training split read
with the test transforms), then (c), (d), ... that of single images, the
first image of each of the first ``--examples`` classes. With auxiliary
branches also ``DIR/query_similarity_branches.png``, the k * N queries of
all branches (the shift keeps each within-branch block equal to branch
0's). ``DIR/query_similarity.json`` holds every matrix and its off-diagonal
mean and largest |cosine|. A model whose head has no learned queries (any
head but QueryOpt's ``QueryHashHead``) is refused in one line.
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
from mmengine.registry import init_default_scope  # noqa: E402

import mmqueryopt  # noqa: E402,F401  (registers every module)
from encode import build_dataloader  # noqa: E402
from mmqueryopt.analysis.query_similarity import (  # noqa: E402
    plot_branch_queries, plot_query_similarity, query_similarities,
    split_attribute_similarities)
from mmqueryopt.engine.cli import (add_encoder_args,  # noqa: E402
                                   add_loader_args,
                                   exit_on_user_error, read_config,
                                   user_error_message)
from mmqueryopt.fileio import atomic_write  # noqa: E402
from mmqueryopt.models import QueryHashHead  # noqa: E402
from mmqueryopt.registry import MODELS  # noqa: E402
from mmqueryopt.retrieval.encoder import build_encoder  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Cosine similarity of the learned queries and of the '
        'attribute features they decode (QueryOpt Figure 8); writes '
        'query_similarity.png and .json')
    add_encoder_args(parser, 'checkpoint file (loaded with '
                     'weights_only=True)')
    parser.add_argument('--out-dir', required=True,
                        help='where the PNGs and query_similarity.json go')
    parser.add_argument(
        '--split', choices=['database', 'query'], default='query',
        help="images whose attribute features are compared: 'query', the "
        "test split (default), or 'database', the training split read "
        'with the test transforms')
    parser.add_argument(
        '--examples', type=int, default=3,
        help='single images drawn (the first of each of the first '
        'classes; default 3, as the paper)')
    add_loader_args(parser)
    args = parser.parse_args(argv)
    if args.examples < 0:
        raise SystemExit(f'error: --examples must be >= 0; got '
                         f'{args.examples}')
    return args


def check_head(cfg, config: str) -> None:
    """One line for a config whose head has no learned queries, before the
    model is built."""
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    head_type = cfg.model.get('head', {}).get('type')
    head_class = (head_type if isinstance(head_type, type) else
                  MODELS.get(head_type) if head_type else None)
    if not (isinstance(head_class, type)
            and issubclass(head_class, QueryHashHead)):
        name = getattr(head_type, '__name__', head_type)
        raise SystemExit(
            f'error: {config}: model.head is {name}, which has no learned '
            f"queries; query similarity needs QueryOpt's QueryHashHead (or "
            f'a subclass)')


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns what it writes to ``query_similarity.json``."""
    args = parse_args(argv)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        with exit_on_user_error():
            cfg = read_config(args.config, args.cfg_options,
                              args.allow_new_keys)
            check_head(cfg, args.config)
            model = build_encoder(cfg, args.checkpoint, device)
            loader = build_dataloader(
                cfg, argparse.Namespace(**vars(args), images=None))
            attributes = split_attribute_similarities(
                model, loader, args.examples, progress=not args.no_progress)
    except ValueError as error:
        # A checkpoint of another configuration (its code length, shapes).
        raise SystemExit(f'error: {user_error_message(error)}') from None
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        head=type(model.head).__name__,
        code_length=int(model.code_length),
        num_branches=int(model.head.num_branches),
        split=args.split,
        **query_similarities(model.head),
        attributes=attributes)
    written = [osp.join(args.out_dir, 'query_similarity.png')]
    plot_query_similarity(result, written[0],
                          loader.dataset.metainfo.get('classes'))
    if result['branch_queries'] is not None:
        written.append(osp.join(args.out_dir,
                                'query_similarity_branches.png'))
        plot_branch_queries(result['branch_queries']['matrix'],
                            result['code_length'], written[-1])
    written.append(osp.join(args.out_dir, 'query_similarity.json'))
    atomic_write(written[-1], json.dumps(result, indent=1).encode())
    for name in ('queries', 'branch_queries'):
        if result[name] is not None:
            print(f'{name}: off-diagonal mean |cos| '
                  f'{result[name]["mean_abs"]:.4f}, largest '
                  f'{result[name]["max_abs"]:.4f}')
    mean = attributes['mean']
    print(f'attributes ({attributes["num_images"]} {args.split} images): '
          f'off-diagonal mean |cos| {mean["mean_abs"]:.4f}, largest '
          f'{mean["max_abs"]:.4f}')
    print('-> ' + ', '.join(written), file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
