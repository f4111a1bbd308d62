"""The round cache: decoded once per round, same batches bit for bit."""
import multiprocessing
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, set_random_seed
from torch.utils.data import DataLoader

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.datasets import (LoadImageBGR, RoundCache, RoundCacheError,
                                 round_caches)
from mmqueryopt.engine import RoundBatchSampler, RoundSampler
from mmqueryopt.engine.epoch_seed_hook import (epoch_seed,
                                               epoch_worker_init_fn)
from mmqueryopt.fileio import load_checkpoint_file
from mmqueryopt.registry import DATASETS
from probe_hooks import KillAfterEpochHook, Killed

sys.path.insert(0, osp.join(REPO, 'benchmarks'))
from bench_data import with_cache, write_cub_tree  # noqa: E402


def image(height, width, seed):
    return np.random.RandomState(seed).randint(
        0, 256, (height, width, 3), dtype=np.uint8)


def test_put_get_overflow_and_clear():
    cache = RoundCache(3 * 10 * 8 * 2 + 5)  # room for two 10x8 images
    first, second, third = (image(10, 8, s) for s in range(3))
    assert cache.get(7) is None
    assert cache.put(7, first)
    assert not cache.put(7, second)  # already stored: keeps the first
    got = cache.get(7)
    assert np.array_equal(got, first) and got.flags.writeable
    got[:] = 0  # a copy: the cache is untouched
    assert np.array_equal(cache.get(7), first)
    assert cache.put(3, second)
    assert not cache.put(5, third)  # beyond the budget
    assert cache.get(5) is None
    assert cache.stats() == dict(images=2, bytes=480, beyond_budget=1,
                                 hits=2)
    cache.clear()
    assert cache.get(7) is None and cache.get(3) is None
    assert cache.stats() == dict(images=0, bytes=0, beyond_budget=0, hits=0)
    # After a clear the freed pages are reused.
    assert cache.put(5, third) and np.array_equal(cache.get(5), third)


def _put_in_child(cache, index, img):
    cache.put(index, img)


def test_shared_with_forked_processes():
    cache = RoundCache(2**20)
    img = image(30, 20, 0)
    ctx = multiprocessing.get_context('fork')
    child = ctx.Process(target=_put_in_child, args=(cache, 4, img))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert np.array_equal(cache.get(4), img)


@pytest.mark.parametrize('budget, message', [
    (0, 'must be a positive number of bytes'),
    (-1, 'must be a positive number of bytes'),
    (1.5e9, 'must be a positive number of bytes'),
])
def test_bad_budget(budget, message):
    with pytest.raises(RoundCacheError, match=message):
        LoadImageBGR(cache_bytes=budget)


def test_budget_smaller_than_one_image_stops_with_advice():
    cache = RoundCache(1000)
    with pytest.raises(RoundCacheError,
                       match=r'cache_bytes=1,000 bytes is smaller than one '
                       r'image \(20x30x3 = 1,800 bytes\).*None'):
        cache.put(0, image(20, 30, 0))


def test_pickled_copy_refused():
    with pytest.raises(RoundCacheError, match="mp_start_method='fork'"):
        pickle.dumps(RoundCache(100))


@pytest.fixture(scope='module')
def jpeg_tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cub'))
    return write_cub_tree(root, 40, (80, 60))


def round_loader(root, cache_bytes, num_workers, persistent):
    """The CUB config's training loader over ``root``: 24 of 40 images a
    round, 3 passes, batch 4."""
    init_default_scope('mmqueryopt')
    cfg = Config.fromfile(osp.join(REPO, 'configs/queryopt_cub_12bit.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(
        data_root=root, warn_size=False,
        pipeline=with_cache(dataset_cfg.pipeline, cache_bytes))
    dataset = DATASETS.build(dataset_cfg)
    sampler = RoundSampler(dataset, epochs_per_round=3, num_samples=24,
                           seed=5)
    return DataLoader(
        dataset,
        batch_sampler=RoundBatchSampler(sampler, batch_size=4),
        num_workers=num_workers,
        persistent_workers=persistent,
        worker_init_fn=epoch_worker_init_fn if num_workers else None,
        collate_fn=pseudo_collate)


def run_rounds(loader, rounds=2):
    """Each round's batches, reseeded and cleared as the hooks do."""
    caches = list(round_caches(loader.dataset))
    batches, stats = [], []
    for round_idx in range(rounds):
        set_random_seed(epoch_seed(0, round_idx))
        loader.batch_sampler.sampler.set_epoch(round_idx)
        for cache in caches:
            cache.clear()
        batches.append([(torch.stack(b['inputs']),
                         [s.sample_idx for s in b['data_samples']])
                        for b in loader])
        stats += [cache.stats() for cache in caches]
    return batches, stats


@pytest.mark.parametrize('num_workers, persistent', [(0, False), (2, True),
                                                     (2, False)])
def test_cached_batches_equal_uncached(jpeg_tree, num_workers, persistent):
    plain, no_stats = run_rounds(
        round_loader(jpeg_tree, None, num_workers, persistent))
    cached, stats = run_rounds(
        round_loader(jpeg_tree, 2**22, num_workers, persistent))
    assert no_stats == []
    for plain_round, cached_round in zip(plain, cached):
        assert len(plain_round) == len(cached_round) == 18
        for (plain_img, plain_idx), (img, idx) in zip(plain_round,
                                                      cached_round):
            assert plain_idx == idx
            assert torch.equal(plain_img, img)
    # The crops and flips are random per pass: not the same tensors again.
    assert not torch.equal(plain[0][0][0], plain[0][6][0])
    # Each image of the round was decoded and stored once, whichever
    # worker decoded it; the later passes read it (workers prefetching
    # the next pass may decode an image still in flight again).
    for round_stats in stats:
        assert round_stats['images'] == 24
        assert round_stats['bytes'] == 24 * 80 * 60 * 3
        if num_workers == 0:
            assert round_stats['hits'] == 2 * 24
        else:
            assert round_stats['hits'] >= 2 * 24 - 2 * 2 * 4


class RecordCacheStats(Hook):
    # Before ADSHRoundHook (NORMAL) frees the cache at the round's end.
    priority = 'ABOVE_NORMAL'

    def __init__(self):
        self.stats = []

    def after_train_epoch(self, runner):
        self.stats += [c.stats()
                       for c in round_caches(runner.train_dataloader.dataset)]


def test_resumed_cached_run_matches_uncached_run(digits_root, tmp_path):
    """Kill a cached run after round 2 of 3 and resume it: the weights and
    codes equal those of an uninterrupted run without the cache."""
    init_default_scope('mmqueryopt')

    def cfg(work_dir, cache_bytes):
        config = tiny_digits_cfg(digits_root, str(tmp_path / work_dir),
                                 rounds=3, epochs_per_round=2)
        config.train_dataloader.dataset.pipeline[0].cache_bytes = cache_bytes
        config.default_hooks.checkpoint.interval = 1
        return config

    whole = Runner.from_cfg(cfg('whole', None))
    whole.train()
    killed = Runner.from_cfg(cfg('cached', 2**22))
    killed.register_hook(KillAfterEpochHook(2))
    with pytest.raises(Killed):
        killed.train()
    resumed_cfg = cfg('cached', 2**22)
    resumed_cfg.resume = True
    resumed_cfg.load_from = str(tmp_path / 'cached' / 'epoch_2.pth')
    resumed = Runner.from_cfg(resumed_cfg)
    record = RecordCacheStats()
    resumed.register_hook(record)
    resumed.train()
    cache = next(round_caches(resumed.train_dataloader.dataset))
    assert resumed.epoch == 3
    # Round 3 ran on the cache: 48 images decoded once, read in pass 2.
    assert record.stats == [dict(images=48, bytes=48 * 16 * 16 * 3,
                                 beyond_budget=0, hits=48)]
    expected = whole.model.state_dict()
    got = resumed.model.state_dict()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []
    # The round hook freed the cache when the round ended.
    assert cache.stats()['images'] == 0


def test_each_ddp_rank_caches_its_shard(digits_root, tmp_path):
    """Two torchrun processes, with and without the cache: the same
    checkpoint bit for bit; rank 0 cached its 17 of the 33 images."""
    from test_distributed import NUM_SAMPLES, ddp_cfg, dist_train
    assert NUM_SAMPLES == 33
    states = {}
    for name, cache_bytes in (('plain', None), ('cached', 2**22)):
        (tmp_path / name).mkdir()
        cfg = ddp_cfg(digits_root, tmp_path / name, 1)
        cfg.train_dataloader.dataset.pipeline[0].cache_bytes = cache_bytes
        cfg.default_hooks.checkpoint.interval = 1
        proc = dist_train(cfg, tmp_path / name)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-3000:]
        states[name] = load_checkpoint_file(
            str(tmp_path / name / 'work' / 'epoch_1.pth'))['state_dict']
    assert 'Round cache: 17 images decoded once' in log
    assert [k for k, v in states['plain'].items()
            if not torch.equal(v, states['cached'][k])] == []
