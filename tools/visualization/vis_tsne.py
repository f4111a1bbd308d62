"""t-SNE of the relaxed codes of a split, coloured by class (QueryOpt
Figure 13).

``python tools/visualization/vis_tsne.py CONFIG CHECKPOINT [CONFIG2
CHECKPOINT2 ...] --out-dir DIR`` encodes the config's test split (or
``--split database``: its training split with the test transforms) with
each model, keeps the images MMPretrain's ``vis_tsne.py`` keeps
(``--class-idx`` or the first ``--max-num-class`` classes, at most
``--max-num-samples`` images each), embeds each model's relaxed bits with
scikit-learn's t-SNE (``--perplexity``, ``--early-exaggeration``,
``--learning-rate``, ``--n-iter``/``--max-iter``,
``--n-iter-without-progress``, ``--init`` as there; ``--seed`` fixes the
result) and writes ``tsne.png`` (one panel per model, side by side, e.g.
with and without the auxiliary branch) and ``tsne.json`` (per panel the
2-D points, their labels, dataset indices, image paths and relaxed
codes, and the settings). The tool is MMPretrain's with what a hashing
model needs: the features are the codes (no ``--vis-stage``), the
output is always 2-D (no ``--n-components``) and the files go to
``--out-dir`` (no ``--work-dir``, no ``--show``).
"""
import os.path as osp
import sys

# tools/: openmp_env, first, before torch loads OpenMP (docs/speed.md).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: E402,F401  # isort: skip
import argparse  # noqa: E402
import json  # noqa: E402
from typing import List, Optional  # noqa: E402

import torch  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import mmqueryopt  # noqa: E402,F401  (registers every module)
from mmqueryopt.analysis.tsne import (check_perplexity, embed,  # noqa: E402
                                      plot_panels, select_samples)
from mmqueryopt.datasets import BrokenImageError  # noqa: E402
from mmqueryopt.engine.cli import (add_cfg_options,  # noqa: E402
                                   exit_on_user_error,
                                   user_error_message)
from mmqueryopt.engine.config_options import read_config  # noqa: E402
from mmqueryopt.fileio import atomic_write  # noqa: E402
from mmqueryopt.retrieval import build_encoder  # noqa: E402
from mmqueryopt.retrieval.encoder import (encode_outputs,  # noqa: E402
                                          relaxed_bits)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='t-SNE of the relaxed codes, coloured by class; several '
        'CONFIG CHECKPOINT pairs are drawn side by side')
    parser.add_argument(
        'models', nargs='+', metavar='CONFIG CHECKPOINT',
        help='config file and checkpoint file; repeat the pair to compare '
        'models')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--names', nargs='+',
        help='panel titles, one per pair (default: the config names)')
    parser.add_argument(
        '--split', choices=['query', 'database'], default='query',
        help="'query': the config's test split (default); 'database': its "
        'training split, read with the test transforms')
    parser.add_argument(
        '--class-idx', nargs='+', type=int,
        help='the classes to embed (default: the first --max-num-class)')
    parser.add_argument(
        '--max-num-class', type=int, default=20,
        help='the first N classes (default 20)')
    parser.add_argument(
        '--max-num-samples', type=int, default=100,
        help='at most this many images per class (default 100)')
    # Applied to every config.
    add_cfg_options(parser)
    parser.add_argument(
        '--device', help="e.g. 'cpu' or 'cuda:0' (default: CUDA when "
        'available)')
    parser.add_argument(
        '--batch-size', type=int, help="default: the test dataloader's")
    parser.add_argument(
        '--legend', action='store_true', help='show a legend of the classes')
    parser.add_argument(
        '--perplexity', type=float, default=30.0,
        help='t-SNE perplexity, below the number of points (default 30)')
    parser.add_argument(
        '--early-exaggeration', type=float, default=12.0,
        help='default 12')
    parser.add_argument(
        '--learning-rate', default='auto',
        help="a number or 'auto' (scikit-learn's default; MMPretrain used "
        '200)')
    parser.add_argument(
        '--n-iter', '--max-iter', type=int, default=1000, dest='max_iter',
        help='optimisation iterations (default 1000; scikit-learn calls it '
        'max_iter)')
    parser.add_argument(
        '--n-iter-without-progress', type=int, default=300,
        help='default 300')
    parser.add_argument(
        '--init', choices=['random', 'pca'], default='pca',
        help="initial embedding (default 'pca', scikit-learn's; MMPretrain "
        "used 'random')")
    parser.add_argument(
        '--seed', type=int, default=0,
        help="t-SNE's random_state: the same seed gives the same points "
        '(default 0)')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """One line for impossible settings, before any work."""
    def fail(message):
        raise SystemExit(f'error: {message}')

    if len(args.models) % 2:
        fail(f'expected CONFIG CHECKPOINT pairs, got {len(args.models)} '
             f'paths: {" ".join(args.models)}')
    pairs = len(args.models) // 2
    if args.names is not None and len(args.names) != pairs:
        fail(f'--names gives {len(args.names)} titles for {pairs} '
             f'CONFIG CHECKPOINT pairs')
    if args.max_num_class < 1 or args.max_num_samples < 1:
        fail('--max-num-class and --max-num-samples must be at least 1')
    if not args.perplexity > 0:
        fail(f'--perplexity {args.perplexity:g}: must be positive')
    if args.max_iter < 250:
        fail(f'--n-iter {args.max_iter}: scikit-learn needs at least 250')
    if args.learning_rate != 'auto':
        try:
            args.learning_rate = float(args.learning_rate)
        except ValueError:
            fail(f"--learning-rate {args.learning_rate!r}: a number or "
                 f"'auto'")
        if not args.learning_rate > 0:
            fail(f'--learning-rate {args.learning_rate:g}: must be '
                 f'positive')


def split_dataset(cfg, split: str):
    """The config's test split, or its training images read with the test
    transforms (as ``tools/encode.py --split database``)."""
    from mmengine.registry import init_default_scope

    from mmqueryopt.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    if split == 'database':
        dataset_cfg = cfg.train_dataloader.dataset.copy()
        dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    return DATASETS.build(dataset_cfg)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns the report written to ``tsne.json``."""
    args = parse_args(argv)
    check_args(args)
    pairs = list(zip(args.models[0::2], args.models[1::2]))
    names = args.names or [osp.splitext(osp.basename(c))[0]
                           for c, _ in pairs]
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        with exit_on_user_error():
            # Configs and image lists first: a bad one fails before any
            # model is loaded or any image encoded.
            chosen = []
            for config, _ in pairs:
                cfg = read_config(config, args.cfg_options,
                                  args.allow_new_keys)
                dataset = split_dataset(cfg, args.split)
                labels = dataset.get_gt_labels()
                indices = select_samples(labels, args.class_idx,
                                         args.max_num_class,
                                         args.max_num_samples)
                check_perplexity(
                    args.perplexity, len(indices),
                    f'the {args.split} split of {config}')
                chosen.append((cfg, dataset, indices))
            panels = []
            for (config, checkpoint), name, (cfg, dataset, indices) in zip(
                    pairs, names, chosen):
                model = build_encoder(cfg, checkpoint, device)
                loader = DataLoader(
                    torch.utils.data.Subset(dataset, indices),
                    batch_size=(args.batch_size or
                                cfg.test_dataloader.get('batch_size', 32)),
                    shuffle=False, collate_fn=pseudo_collate)
                values, paths, labels = encode_outputs(
                    model, loader, relaxed_bits, progress=False)
                if labels is None:
                    raise ValueError(
                        f'the {args.split} split of {config} has images '
                        f'without a single class label: nothing to colour')
                points = embed(values, args.perplexity,
                               args.early_exaggeration, args.learning_rate,
                               args.max_iter, args.n_iter_without_progress,
                               args.init, args.seed)
                panels.append(dict(
                    name=name, config=osp.abspath(config),
                    checkpoint=osp.abspath(checkpoint),
                    code_length=int(model.code_length),
                    relaxed_dims=int(model.head.relaxed_dims),
                    points=points.tolist(), labels=labels.tolist(),
                    relaxed_codes=values.tolist(),
                    indices=list(indices), paths=paths))
    except (BrokenImageError, ValueError) as error:
        raise SystemExit(f'error: {user_error_message(error)}') from None
    class_names = chosen[0][1].metainfo.get('classes')
    settings = {key: getattr(args, key) for key in (
        'split', 'class_idx', 'max_num_class', 'max_num_samples',
        'perplexity', 'early_exaggeration', 'learning_rate', 'max_iter',
        'n_iter_without_progress', 'init', 'seed')}
    report = dict(settings=settings,
                  class_names=None if class_names is None else
                  [str(c) for c in class_names],
                  panels=panels)
    plot_panels(panels, osp.join(args.out_dir, 'tsne.png'), class_names,
                args.legend)
    atomic_write(osp.join(args.out_dir, 'tsne.json'),
                 json.dumps(report, indent=1).encode())
    print(f't-SNE of {", ".join(str(len(p["points"])) for p in panels)} '
          f'{args.split} images -> {args.out_dir}/tsne.png, tsne.json',
          file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
