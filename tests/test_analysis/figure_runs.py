"""Tiny trained digits runs for the figure tools' tests (Figures 3 and 8):
QueryOpt with and without the auxiliary branches, a checkpoint and the
config file each, in seconds."""
import os.path as osp
from types import SimpleNamespace

from mmengine.runner import Runner

from conftest import tiny_digits_cfg


def train_tiny_run(digits_root: str, folder: str, name: str,
                   relaxed_dims: int = 96) -> SimpleNamespace:
    """Train one round of 32 images (12 bits, ``relaxed_dims // 12``
    branches); returns its ``config`` file, ``ckpt`` and ``cfg``."""
    work_dir = osp.join(folder, name)
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=1,
                          epochs_per_round=1, num_samples=32)
    cfg.model.head.relaxed_dims = relaxed_dims
    cfg.default_hooks.checkpoint.interval = 1
    Runner.from_cfg(cfg.copy()).train()
    config = osp.join(folder, f'{name}.py')
    cfg.dump(config)
    return SimpleNamespace(config=config, cfg=cfg,
                           ckpt=osp.join(work_dir, 'epoch_1.pth'))
