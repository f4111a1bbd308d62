"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``."""
import argparse
from typing import List, Optional

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.engine.cli import (add_common_args, build_runner, close_dist,
                                   exit_on_checkpoint_error, load_config)


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
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.database is not None:
        for hook in cfg.custom_hooks:
            if hook.type == 'RetrievalDatabaseHook':
                hook.source = args.database
                if args.database == 'encoded' and not hook.get('dataloader'):
                    hook.dataloader = database_loader(cfg)
    with exit_on_checkpoint_error():
        runner = build_runner(cfg)
        runner.test()
    close_dist()


def database_loader(cfg):
    """The training split read like the queries (test transforms)."""
    loader = cfg.test_dataloader.copy()
    loader.dataset = cfg.train_dataloader.dataset.copy()
    loader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    return loader


if __name__ == '__main__':
    main()
