"""What the tools share: the common command line, config reading with checked
``--cfg-options``, config defaults, a Runner that also works distributed on
CPUs, and one-line errors for what a user can fix (config, data,
checkpoint files)."""
import argparse
import contextlib
import os
import os.path as osp
import re
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmqueryopt.datasets import BrokenImageError, DatasetError
from mmqueryopt.fileio import CheckpointFileError
from mmqueryopt.models.errors import ModelConfigError
from mmqueryopt.retrieval import build_encoder
from .config_options import (NEW_KEYS_FLAG, ConfigError, read_config,
                             unknown_argument)

# Errors whose message tells a user what to fix (the file, line or key):
# printed as one line, without a traceback. A missing file (an image, a
# pretrained checkpoint) names itself too.
USER_ERRORS = (ConfigError, DatasetError, BrokenImageError,
               CheckpointFileError, FileNotFoundError, ModelConfigError)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options`` and ``--allow-new-keys``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. key=value a.b=1 list="[1,2]"; '
        'a key the config does not have must be an argument of the type '
        f'that reads it (see {NEW_KEYS_FLAG})')
    add_new_keys_flag(parser)


def add_new_keys_flag(parser: argparse.ArgumentParser) -> None:
    """``--allow-new-keys``, for tools that add ``--cfg-options``
    themselves."""
    parser.add_argument(
        NEW_KEYS_FLAG,
        action='store_true',
        help='let --cfg-options add keys the config does not have (by '
        'default a new top-level key is an error naming the closest '
        'existing key, and a new nested key must be an argument of its '
        "dict's type)")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--allow-new-keys``,
    ``--launcher`` and ``--local-rank``."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    add_cfg_options(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (pytorch: torchrun; CPUs use the gloo backend)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the common options.

    The work dir defaults to ``work_dirs/<config name>``; dataloaders pin
    memory only where there is a GPU to pin for.

    Raises:
        ConfigError: The file or an override is unusable (see
            :func:`~mmqueryopt.engine.config_options.read_config`).
    """
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(
            'work_dirs', osp.splitext(osp.basename(args.config))[0])
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field) is not None:
            loader = ConfigDict(pin_memory=torch.cuda.is_available())
            loader.update(cfg[field])
            cfg[field] = loader
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the Runner; on machines without CUDA, a distributed launch
    joins a gloo process group first.

    MMEngine's pytorch launcher always calls ``torch.cuda.set_device`` and its
    DDP wrapper passes CUDA device ids; initialising gloo beforehand makes
    MMEngine skip its own init, and ``device_ids=None`` wraps a CPU model.
    The slurm and mpi launchers read their ranks from variables that only
    MMEngine's CUDA path translates, so without CUDA they are refused.
    """
    if cfg.launcher != 'none' and not torch.cuda.is_available():
        _join_gloo_group(cfg.launcher, 'bash tools/dist_train.sh CONFIG '
                         'NUM_PROCESSES')
        # The Runner logs env_cfg as the run's settings: say what is used.
        env_cfg = cfg.get('env_cfg') or ConfigDict()
        env_cfg.setdefault('dist_cfg', ConfigDict()).backend = 'gloo'
        cfg.env_cfg = env_cfg
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
            type='MMDistributedDataParallel')
        wrapper.device_ids = None
        cfg.model_wrapper_cfg = wrapper
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def _join_gloo_group(launcher: str, torchrun_example: str) -> None:
    """Join a gloo group on a machine without CUDA, where only torchrun's
    environment (the pytorch launcher) names the ranks."""
    if launcher != 'pytorch':
        raise ConfigError(
            f'--launcher {launcher} needs CUDA; on CPUs launch with '
            f'torchrun: {torchrun_example}')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def join_launcher(launcher: str, torchrun_example: str) -> str:
    """For tools that run without a Runner: join the launcher's process
    group (nccl on GPUs, gloo on CPUs) and return this rank's device.

    Args:
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        torchrun_example (str): The CPU command line to suggest when a
            launcher needs CUDA.

    Returns:
        str: ``'cuda:<local rank>'`` or ``'cpu'``; None for ``'none'``.
    """
    if launcher == 'none':
        return None
    if not torch.cuda.is_available():
        _join_gloo_group(launcher, torchrun_example)
        return 'cpu'
    if not dist.is_initialized():
        from mmengine.dist import init_dist
        init_dist(launcher)
    return f'cuda:{torch.cuda.current_device()}'


def close_dist() -> None:
    """End a successful distributed run by destroying its process group.

    A gloo group left to the interpreter's exit can abort the process
    (SIGABRT, "terminate called without an active exception") after the
    work is done, which torchrun reports as a failed run. Not called on
    errors: destroying while other ranks still communicate can hang.
    """
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """End the program with ``error: <one line>`` (exit status 1) on an
    error that a user fixes in the command line, the config, the data or
    a checkpoint file: the message names the file, line or key, and a
    traceback through MMEngine would only bury it.

    Besides :data:`USER_ERRORS`, a ``TypeError`` from MMEngine's build of a
    registered type that got an unexpected keyword argument (a config key
    that :func:`read_config` could not check) becomes one line too.

    Yields:
        None: The block whose user errors are reported this way.
    """
    try:
        yield
    except Exception as err:
        line = user_error_line(err)
        if line is None:
            raise
        raise SystemExit(line) from None


def user_error_line(error: BaseException) -> Optional[str]:
    """``error: <one line>`` for a user error (see
    :func:`exit_on_user_error`), None for any other error.

    Args:
        error (BaseException): The error.

    Returns:
        str | None: The line to end the program with.
    """
    if isinstance(error, USER_ERRORS):
        return f'error: {user_error_message(error)}'
    if isinstance(error, TypeError):
        message = _unexpected_argument(error)
        return None if message is None else f'error: {message}'
    return None


def user_error_message(error: BaseException) -> str:
    """The one line to print for ``error``.

    A dataloader worker's error comes back with the worker's traceback as
    its message, whose last line holds the original one.

    Args:
        error (BaseException): One of :data:`USER_ERRORS` (or any error).

    Returns:
        str: One line.
    """
    message = str(error).strip()
    if 'Original Traceback' in message:
        last = message.splitlines()[-1]
        name, _, detail = last.partition(': ')
        message = detail if detail and ' ' not in name else last
    return ' '.join(message.splitlines()) or type(error).__name__


def _unexpected_argument(error: TypeError) -> Optional[str]:
    """The one line for a registered type that MMEngine's
    ``build_from_cfg`` called with a keyword it does not take; None for any
    other ``TypeError`` (a bug, to be shown with its traceback)."""
    keyword = re.search(r"got an unexpected keyword argument '(\w+)'",
                        str(error))
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    # Raised by the call itself: the innermost frame is the builder's.
    if (keyword is None or frame is None
            or frame.tb_frame.f_code.co_name != 'build_from_cfg'
            or 'obj_cls' not in frame.tb_frame.f_locals):
        return None
    return unknown_argument(frame.tb_frame.f_locals['obj_cls'],
                            keyword.group(1))


def add_loader_args(parser: argparse.ArgumentParser) -> None:
    """How a tool reads its images: ``--batch-size`` and ``--num-workers``
    (default: the config's test dataloader's) and ``--no-progress``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        '--batch-size', type=int, help="default: the test dataloader's")
    parser.add_argument(
        '--num-workers', type=int, help="default: the test dataloader's")
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bars')


def add_encoder_args(parser: argparse.ArgumentParser,
                     checkpoint_help: str) -> None:
    """The arguments naming a trained encoder: ``config``, ``checkpoint``,
    ``--device``, ``--cfg-options`` and ``--allow-new-keys``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        checkpoint_help (str): Help text of the checkpoint argument.
    """
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help=checkpoint_help)
    parser.add_argument(
        '--device',
        help="e.g. 'cpu' or 'cuda:0' (default: CUDA when available)")
    add_cfg_options(parser)


def encoder_from_args(args: argparse.Namespace) -> tuple:
    """The config and the eval-mode model that :func:`add_encoder_args`
    named; a user error (config, override, checkpoint) ends the program
    with one line (:func:`exit_on_user_error`).

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        tuple: ``(cfg, model)``.
    """
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    with exit_on_user_error():
        cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
        return cfg, build_encoder(cfg, args.checkpoint, device)
