"""What ``tools/train.py`` and ``tools/test.py`` share: the common command
line, config defaults, a Runner that also works distributed on CPUs, and
one-line errors for unusable checkpoint files."""
import argparse
import contextlib
import os
import os.path as osp
from typing import Iterator

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint_io import CheckpointFileError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. key=value a.b=1 list="[1,2]"')
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
    """
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
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
        raise RuntimeError(
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
def exit_on_checkpoint_error() -> Iterator[None]:
    """End the program with ``error: <message>`` (exit status 1) when a
    checkpoint file is unusable: the message names the file and the cause,
    and a traceback through MMEngine would only bury it.

    Yields:
        None: The block whose checkpoint errors are reported this way.
    """
    try:
        yield
    except CheckpointFileError as err:
        raise SystemExit(f'error: {err}') from None
