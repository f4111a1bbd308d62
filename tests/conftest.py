import contextlib
import glob
import os.path as osp
import sys
import uuid
from types import SimpleNamespace

import pytest
from mmengine.config import Config

import mmqueryopt  # noqa: F401  (registers every module)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))
# The tests mirror the package in folders; a test module may use another's
# helpers (fixtures, oracles) by its name, wherever the other lives.
sys.path[1:1] = sorted(glob.glob(osp.join(REPO, 'tests', 'test_*', '')))


@pytest.fixture(autouse=True, scope='session')
def image_check_cache(tmp_path_factory):
    """Keep the datasets' image-check cache out of the user's home (tools
    run in subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MMQUERYOPT_CACHE_DIR',
                     str(tmp_path_factory.mktemp('image_check_cache')))
        yield


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """The real digits exported at 16x16 in CUB's layout (1,437 + 360)."""
    from export_digits import export_digits
    root = str(tmp_path_factory.mktemp('data') / 'digits')
    export_digits(root, size=16)
    return root


def tiny_digits_cfg(data_root: str, work_dir: str, rounds: int = 2,
                    epochs_per_round: int = 2,
                    num_samples: int = 48) -> Config:
    """The digits main job shrunk to seconds: a narrower network, small
    rounds, 16x16 input, no checkpoints unless a test asks."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/queryopt/queryopt_digits_12bit.py'))
    cfg.work_dir = work_dir
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.model.neck.update(
        in_channels=(32, 64), embed_dims=32, top_down_channels=16,
        num_heads=2, ffn_dims=32)
    cfg.model.head.update(embed_dims=32, num_heads=2, ffn_dims=32)
    cfg.train_dataloader.sampler.update(
        num_samples=num_samples, epochs_per_round=epochs_per_round)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_epochs=rounds, val_interval=10**6)
    cfg.param_scheduler.milestones = [10**6]
    cfg.default_hooks.checkpoint.update(interval=10**6, save_best=None)
    cfg.default_hooks.logger.interval = 1000
    cfg.randomness = dict(seed=0, deterministic=True)
    # MMEngine names a runner's logger, message hub and visualizer by config
    # name and second: two runners built in one second would share them.
    cfg.experiment_name = f'tiny_{uuid.uuid4().hex[:8]}'
    return cfg


def train_tiny_run(digits_root: str, folder: str, name: str,
                   relaxed_dims: int = 96) -> SimpleNamespace:
    """Train one round of 32 images of :func:`tiny_digits_cfg` (12 bits,
    ``relaxed_dims // 12`` branches: 8, the config's, by default).

    Returns:
        SimpleNamespace: ``config`` (the config file, dumped to
        ``folder/<name>.py``), ``ckpt`` (its checkpoint) and ``cfg``.
    """
    from mmengine.runner import Runner

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


@contextlib.contextmanager
def one_thread_encoder(run: SimpleNamespace):
    """The encoder of a :func:`train_tiny_run`, run on one thread (on a busy
    machine the other thread spinning in OpenMP makes this small network
    many times slower)."""
    import torch

    from mmqueryopt.retrieval.encoder import build_encoder
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield build_encoder(run.cfg, run.ckpt, 'cpu')
    finally:
        torch.set_num_threads(threads)


def adsh_view(batch_labels, batch_indices, database_codes, database_labels,
              gamma=200.0, similarity='binary', dtype=None):
    """The view an ``ADSHDatabase`` holding ``database_codes`` (B) and
    ``database_labels`` gives a batch (no round started)."""
    from mmqueryopt.models import ADSHDatabase
    database = ADSHDatabase(gamma=gamma, similarity=similarity,
                            code_width=database_codes.size(1))
    database.prepare(database_labels)
    database.to(database_codes.dtype).codes.copy_(database_codes)
    return database.view(batch_indices, batch_labels,
                         dtype or database_codes.dtype)
