"""Train a hashing model: ``python tools/train.py CONFIG [options]``."""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
from typing import List, Optional

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.datasets import check_data
from mmqueryopt.engine.checkpoint_io import (find_resumable_checkpoint,
                                             load_resumable_checkpoint)
from mmqueryopt.engine.cli import (add_common_args, build_runner, close_dist,
                                   exit_on_user_error, load_config)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a hashing model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or with no value from the latest '
        'intact one in the work dir (a damaged latest one is skipped with a '
        'warning)')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip evaluation during training')
    add_common_args(parser)
    return parser.parse_args(argv)


def resume_checkpoint(resume: str, work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from, verified to load whole.

    Args:
        resume (str): ``'auto'`` or a checkpoint path.
        work_dir (str): The run's work dir, searched for ``'auto'``.

    Returns:
        str or None: The checkpoint; None when ``'auto'`` finds no
        ``last_checkpoint`` (MMEngine then trains from the start).

    Raises:
        CheckpointFileError: The given checkpoint, or every candidate in the
            work dir, is unusable.
    """
    if resume == 'auto':
        return find_resumable_checkpoint(work_dir)
    load_resumable_checkpoint(resume)
    return resume


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    # Config, data and checkpoint first: a mistake in any is one line
    # before the runner logs or writes anything.
    with exit_on_user_error():
        cfg = load_config(args)
        if args.no_validate:
            cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        if args.amp:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        check_data(cfg)
        if args.resume is not None:
            cfg.resume = True
            cfg.load_from = resume_checkpoint(args.resume, cfg.work_dir)
        runner = build_runner(cfg)
        runner.train()
    final = {
        key[len('val/'):]: buffer.current()
        for key, buffer in runner.message_hub.log_scalars.items()
        if key.startswith(('val/retrieval/', 'val/seen@', 'val/unseen@'))
    }
    if final:
        runner.logger.info('Final evaluation: ' + ', '.join(
            f'{key}: {value:.4f}' for key, value in final.items()))
    close_dist()


if __name__ == '__main__':
    main()
