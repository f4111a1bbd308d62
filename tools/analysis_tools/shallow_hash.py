"""Shallow hashing on deep features: LSH, ITQ or SDH on the frozen, pooled
backbone-and-neck features of a config's model.

    python tools/analysis_tools/shallow_hash.py CONFIG [CHECKPOINT] \
        --method {lsh,itq,sdh} --bits K --out-dir DIR

Without CHECKPOINT the model has the weights its config initialises
(``init_cfg``: ImageNet for the ResNet-50 configs; random for the digits
configs, which train from scratch); with one, its weights (the safe loader,
strict). The training split, read with the test transforms as
``tools/encode.py`` reads the database, is the database and the data the
hash function learns from; the test split is the queries. The features are
the neck's output pooled to one vector per image
(:mod:`mmqueryopt.analysis.shallow.features`), encoded by the loop of
``tools/encode.py``; the mAP is :func:`evaluate_retrieval`'s, as
``tools/test.py`` reports it. Writes ``DIR/results.json`` (the mAP and the
settings) and prints a results table. See docs/shallow_hashing.md.
"""
import os.path as osp
import sys

# tools/: openmp_env, first, before torch loads OpenMP (docs/speed.md), and
# the dataloaders of encode.py.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import openmp_env  # noqa: E402,F401  # isort: skip
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from typing import List, Optional  # noqa: E402

import torch  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmqueryopt  # noqa: E402,F401  (registers every module)
from encode import build_dataloader  # noqa: E402
from mmqueryopt.analysis.shallow import (SHALLOW_METHODS,  # noqa: E402
                                         backbone_neck_features,
                                         describe_feature, pooled_feature)
from mmqueryopt.engine.cli import (add_cfg_options,  # noqa: E402
                                   add_loader_args,
                                   exit_on_user_error, read_config)
from mmqueryopt.evaluation.functional import evaluate_retrieval  # noqa: E402
from mmqueryopt.fileio import atomic_write  # noqa: E402
from mmqueryopt.registry import MODELS  # noqa: E402
from mmqueryopt.retrieval.encoder import (build_encoder,  # noqa: E402
                                          encode_outputs)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='LSH, ITQ or SDH on the pooled backbone-and-neck '
        'features of a config (database: its training split; queries: its '
        'test split); writes DIR/results.json')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help="weights (loaded with weights_only=True); default: the "
        "config's own initialisation (ImageNet weights where its init_cfg "
        'names them)')
    parser.add_argument(
        '--method', required=True, metavar='{' + ','.join(SHALLOW_METHODS) +
        '}', help='lsh: random projections; itq: PCA + iterative rotation; '
        'sdh: supervised discrete hashing (uses the training labels)')
    parser.add_argument('--bits', type=int, required=True,
                        help='code length K')
    parser.add_argument('--out-dir', required=True,
                        help='where results.json goes')
    parser.add_argument(
        '--iterations', type=int,
        help='ITQ: rotation updates (default 50); SDH: outer iterations '
        '(default 5)')
    parser.add_argument(
        '--anchors', type=int, default=1000,
        help='SDH: RBF anchors drawn from the training features (default '
        '1000)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help="seed of the method's draws and of a randomly initialised "
        'model (default 0)')
    parser.add_argument(
        '--device',
        help="e.g. 'cpu' or 'cuda:0' (default: CUDA when available)")
    add_loader_args(parser)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    # One line and status 1, as for every other bad input of the tools.
    if args.method not in SHALLOW_METHODS:
        raise SystemExit(f'error: --method {args.method!r} is not one of '
                         f'{", ".join(SHALLOW_METHODS)}')
    if args.bits < 1:
        raise SystemExit(f'error: --bits must be at least 1; got '
                         f'{args.bits}')
    if args.iterations is not None and args.iterations < 0:
        raise SystemExit(f'error: --iterations must be >= 0; got '
                         f'{args.iterations}')
    if args.anchors < 1:
        raise SystemExit(f'error: --anchors must be at least 1; got '
                         f'{args.anchors}')
    return args


def build_hash(args):
    """The ``--method`` object with the command line's settings."""
    options = dict(seed=args.seed)
    if args.iterations is not None and args.method != 'lsh':
        options['iterations'] = args.iterations
    if args.method == 'sdh':
        options['anchors'] = args.anchors
    return SHALLOW_METHODS[args.method](args.bits, **options)


def build_model(cfg, args):
    """The config's model in eval mode: the checkpoint's weights, or its own
    initialisation (a missing pretrained file becomes advice)."""
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.checkpoint is not None:
        return build_encoder(cfg, args.checkpoint, device)
    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    torch.manual_seed(args.seed)
    # MMEngine logs every parameter's initialisation at INFO level.
    if not MMLogger.check_instance_created('shallow_hash'):
        MMLogger.get_instance('shallow_hash', log_level='WARNING')
    model = MODELS.build(cfg.model)
    try:
        model.init_weights()
    except OSError as err:  # HashRetriever's advice on the pretrained file
        raise SystemExit(f'error: {" ".join(str(err).splitlines())}'
                         ) from None
    return model.to(device).eval()


def _loads_pretrained(model) -> bool:
    for module in model.modules():
        init_cfg = getattr(module, 'init_cfg', None)
        for item in (init_cfg if isinstance(init_cfg, list) else [init_cfg]):
            if isinstance(item, dict) and item.get('type') == 'Pretrained':
                return True
    return False


def split_loaders(cfg, args) -> dict:
    """``database`` and ``query`` dataloaders, as tools/encode.py builds
    them."""
    return {
        split: build_dataloader(
            cfg, argparse.Namespace(**vars(args), split=split, images=None))
        for split in ('database', 'query')
    }


def feature_shape(model, loader) -> tuple:
    """``(dimension, rule)`` of the feature, from the loader's first image."""
    batch = pseudo_collate([loader.dataset[0]])
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        output = model.neck(model.backbone(data['inputs']))
    return pooled_feature(output).shape[1], describe_feature(output)


def check_bits(method, bits: int, dim: int, num_database: int) -> None:
    """End with one line when ``--bits`` is more than the method can
    give."""
    limit = method.max_bits(dim, num_database)
    if limit is not None and bits > limit:
        raise SystemExit(
            f'error: --bits {bits} is more than {method.__name__} can give '
            f'from {num_database} database features of dimension {dim} (the '
            f"pooled output of the config's backbone and neck): at most "
            f'{limit} bits')


def weights_source(model, args) -> str:
    """Where the model's weights come from, for the results."""
    if args.checkpoint is not None:
        return 'checkpoint'
    return ('pretrained (init_cfg)' if _loads_pretrained(model) else
            'random initialisation')


def format_table(rows: List[dict]) -> str:
    """A Markdown table of results rows."""
    header = ('method', 'bits', 'mAP', 'feature dim', 'database', 'queries')
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    for row in rows:
        lines.append(
            f'| {row["method"]} | {row["bits"]} | {row["mAP"]:.4f} | '
            f'{row["feature_dim"]} | {row["database_size"]} | '
            f'{row["query_size"]} |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns what it writes to ``results.json``."""
    args = parse_args(argv)
    method = SHALLOW_METHODS[args.method]
    with exit_on_user_error():
        cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
        if args.checkpoint is not None and not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint file not found: {args.checkpoint}')
        model = build_model(cfg, args)
        loaders = split_loaders(cfg, args)
        num_database = len(loaders['database'].dataset)
        dim, rule = feature_shape(model, loaders['query'])
    check_bits(method, args.bits, dim, num_database)
    if method.supervised and args.anchors > num_database:
        raise SystemExit(
            f'error: --anchors {args.anchors} is more than the '
            f'{num_database} database images SDH draws them from')
    hashing = build_hash(args)
    weights = weights_source(model, args)
    if weights == 'random initialisation':
        print(f'note: no CHECKPOINT and {args.config} loads no pretrained '
              f'weights: the features are those of a randomly initialised '
              f'backbone and neck (seed {args.seed})', file=sys.stderr)
    features, labels = {}, {}
    with exit_on_user_error():
        for split, loader in loaders.items():
            print(f'{split}: features of {len(loader.dataset)} images',
                  file=sys.stderr)
            features[split], _, labels[split] = encode_outputs(
                model, loader, backbone_neck_features,
                progress=not args.no_progress)
    if labels['database'] is None or labels['query'] is None:
        raise SystemExit('error: the mAP needs one class label per image; '
                         "the config's splits have images without one")
    hashing.fit(features['database'], labels['database'])
    metrics = evaluate_retrieval(
        hashing.encode(features['query']),
        hashing.encode(features['database']), labels['query'],
        labels['database'])
    results = dict(
        method=args.method,
        bits=args.bits,
        mAP=float(metrics['mAP']),
        config=args.config,
        checkpoint=args.checkpoint,
        weights=weights,
        feature_dim=int(dim),
        feature=rule,
        database_size=int(len(labels['database'])),
        query_size=int(len(labels['query'])),
        settings=hashing.settings(),
        objective=[float(v) for v in hashing.objective],
    )
    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, 'results.json')
    atomic_write(path, json.dumps(results, indent=1).encode())
    print(format_table([results]))
    print(f'-> {path}', file=sys.stderr)
    return results


if __name__ == '__main__':
    main()
