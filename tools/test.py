"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``."""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
from typing import List, Optional

from mmengine.config import Config

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.datasets import check_data
from mmqueryopt.engine.cli import (add_common_args, build_runner, close_dist,
                                   exit_on_user_error, load_config)
from mmqueryopt.engine.retrieval_database_hook import database_loader_cfg
from mmqueryopt.fileio import load_checkpoint_file


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a hashing model (queries vs database)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file (loaded with weights_only=True: tensors and '
        'plain data only)')
    parser.add_argument(
        '--database',
        choices=['learned', 'encoded'],
        help="database codes: 'learned' = ADSH's B (the authors' protocol), "
        "'encoded' = the network's codes of the training images (test "
        'transforms); default: as the config says')
    parser.add_argument(
        '--out',
        help='write the codes the metric used to this codes file (.npz): '
        'query and database sides with their labels, and the '
        'precision-recall curve (pr_precision, pr_recall); read by '
        'tools/eval_codes.py and tools/analysis_tools/plot_curves.py')
    parser.add_argument(
        '--show-dir',
        help='draw the result grids of the first --show-num queries into '
        'this folder (as tools/search.py --show-dir)')
    parser.add_argument(
        '--show-num', type=int, default=20, help='queries to draw')
    parser.add_argument(
        '--show-topk', type=int, default=10, help='results per grid')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.show_num < 1 or args.show_topk < 1:
        parser.error('--show-num and --show-topk must be at least 1')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with exit_on_user_error():
        cfg = load_config(args)
        configure(cfg, args)
        # Before the runner logs anything: the checkpoint and the data
        # that testing reads.
        load_checkpoint_file(args.checkpoint)
        check_data(test_data(cfg))
        runner = build_runner(cfg)
        runner.test()
    close_dist()


def configure(cfg: Config, args) -> None:
    """Apply the test options to the config."""
    cfg.load_from = args.checkpoint
    if args.database is not None:
        for hook in cfg.custom_hooks:
            if hook.get('type') == 'RetrievalDatabaseHook':
                hook.source = args.database
    if args.out:
        # HammingMAP's own dump: exactly the codes and labels it ranked.
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        for evaluator in evaluators:
            if evaluator.get('type') in ('HammingMAP', 'SeenUnseenMAP'):
                evaluator.dump_file = args.out
    if args.show_dir:
        cfg.custom_hooks.append(
            dict(type='RetrievalVisualizationHook', show_dir=args.show_dir,
                 num=args.show_num, topk=args.show_topk))


def test_data(cfg: Config) -> Config:
    """The part of ``cfg`` that testing reads data from: the queries, and
    the training split when the database is encoded from it (a learned
    database comes from the checkpoint)."""
    used = dict(default_scope=cfg.get('default_scope', 'mmqueryopt'),
                test_dataloader=cfg.test_dataloader)
    for hook in cfg.get('custom_hooks', []):
        if (hook.get('type') == 'RetrievalDatabaseHook'
                and encodes_database(cfg, hook.get('source', 'auto'))):
            used['train_dataloader'] = (hook.get('dataloader')
                                        or database_loader_cfg(cfg, 'test'))
    return Config(used, filename=cfg.filename)


def encodes_database(cfg: Config, source: str) -> bool:
    """Whether testing encodes the training split: ``source='encoded'``,
    or 'auto' with a database strategy that holds no codes."""
    if source != 'auto':
        return source == 'encoded'
    from mmqueryopt.registry import MODELS
    database = cfg.model.get('database', dict(type='ADSHDatabase'))
    database_type = database['type']
    if isinstance(database_type, str):
        with MODELS.switch_scope_and_registry('mmqueryopt') as registry:
            database_type = registry.get(database_type)
    return not database_type.holds_codes


if __name__ == '__main__':
    main()
