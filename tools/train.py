"""Train a hashing model: ``python tools/train.py CONFIG [options]``."""
import argparse

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.engine.cli import (add_common_args, build_runner, close_dist,
                                   load_config)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a hashing model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or with no value from the latest '
        'one in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip evaluation during training')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    runner = build_runner(cfg)
    runner.train()
    final = {
        key[len('val/'):]: buffer.current()
        for key, buffer in runner.message_hub.log_scalars.items()
        if key.startswith('val/retrieval/')
    }
    if final:
        runner.logger.info('Final evaluation: ' + ', '.join(
            f'{key}: {value:.4f}' for key, value in final.items()))
    close_dist()


if __name__ == '__main__':
    main()
