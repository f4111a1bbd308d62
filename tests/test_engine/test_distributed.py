"""ADSH's rounds under DDP: two torchrun processes on CPU (gloo)."""
import os
import os.path as osp
import socket
import subprocess

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.engine import RoundSampler
from mmqueryopt.engine.cli import build_runner
from test_training import reference_update

TESTS = osp.join(REPO, 'tests')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# 17 + 16 images over 2 ranks: 2 batches of 16 against 1 unless the short
# shard is padded; DDP would then hang or fail.
NUM_SAMPLES = 33


def ddp_cfg(digits_root, tmp_path, rounds, *hooks):
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'),
                          rounds=rounds, epochs_per_round=2,
                          num_samples=NUM_SAMPLES)
    cfg.custom_imports = dict(imports=['mmqueryopt', 'probe_hooks'])
    cfg.custom_hooks.extend(hooks)
    return cfg


def dist_train(cfg, tmp_path, *args):
    """``tools/dist_train.sh CONFIG 2``: two torchrun processes."""
    config = str(tmp_path / 'ddp.py')
    cfg.dump(config)
    env = dict(os.environ, PORT=str(free_port()),
               PYTHONPATH=os.pathsep.join([REPO, TESTS]))
    return subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', *args], cwd=REPO,
        env=env, capture_output=True, text=True, timeout=240)


def check_round(ranks, round_idx, drawn):
    """One round of RoundProbeHook records from both ranks against the
    single-process draw and an update from the gathered U."""
    served = [set(rank['indices'][round_idx]) for rank in ranks]
    # Disjoint shards covering the whole draw: none lost, none shared.
    assert not served[0] & served[1]
    assert served[0] | served[1] == set(drawn.tolist())
    assert {len(s) for s in served} == {16, 17}
    # Each rank wrote U only at its own images: nothing overwrote them.
    sampled = [rank['sampled_codes'][round_idx] for rank in ranks]
    for rank_sampled, rank_served in zip(sampled, served):
        written = rank_sampled.abs().sum(1).nonzero().flatten()
        assert set(written.tolist()) == rank_served
    before = ranks[0]['codes_before'][round_idx]
    after = ranks[0]['codes_after'][round_idx]
    assert torch.equal(ranks[1]['codes_before'][round_idx], before)
    assert torch.equal(ranks[1]['codes_after'][round_idx], after)
    gathered = (sampled[0] + sampled[1])[drawn]
    expected = reference_update(before, gathered, drawn.numpy(),
                                ranks[0]['labels'])
    torch.testing.assert_close(after.double(), expected)


def test_two_ranks_share_rounds_and_codes(digits_root, tmp_path):
    rounds = 2
    cfg = ddp_cfg(digits_root, tmp_path, rounds,
                  dict(type='RoundProbeHook', out_dir=str(tmp_path)))
    proc = dist_train(cfg, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Final evaluation: ' in proc.stdout

    ranks = [torch.load(str(tmp_path / f'rank{r}.pth')) for r in (0, 1)]
    single = RoundSampler(range(1437), epochs_per_round=2,
                          num_samples=NUM_SAMPLES, seed=cfg.randomness.seed)
    for round_idx in range(rounds):
        check_round(ranks, round_idx, single.round_indices(round_idx))
    # Same number of iterations on both ranks, every round: 2 passes of 2
    # batches (17 = 16 + 1 images; the short shard is padded to 17).
    assert ranks[0]['batches'] == ranks[1]['batches'] == [4] * rounds


def test_resume_under_ddp(digits_root, tmp_path):
    """Every rank loads rank 0's U from the checkpoint; none of it may
    reach the update twice."""
    cfg = ddp_cfg(digits_root, tmp_path, 2,
                  dict(type='KillAfterEpochHook', epochs=1))
    cfg.default_hooks.checkpoint.interval = 1
    proc = dist_train(cfg, tmp_path)
    assert proc.returncode != 0 and 'Killed' in proc.stderr, proc.stderr

    cfg.custom_hooks[-1] = dict(type='RoundProbeHook', out_dir=str(tmp_path))
    proc = dist_train(cfg, tmp_path, '--resume')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'resumed epoch: 1' in proc.stdout
    ranks = [torch.load(str(tmp_path / f'rank{r}.pth')) for r in (0, 1)]
    single = RoundSampler(range(1437), epochs_per_round=2,
                          num_samples=NUM_SAMPLES, seed=cfg.randomness.seed)
    # The resumed run's first round is round 1 (the second).
    check_round(ranks, 0, single.round_indices(1))


def shard(monkeypatch, num_samples, rank, world_size, epoch=0):
    monkeypatch.setattr('mmqueryopt.engine.round_sampler.get_dist_info',
                        lambda: (rank, world_size))
    sampler = RoundSampler(range(100), epochs_per_round=1,
                           num_samples=num_samples, seed=3)
    sampler.set_epoch(epoch)
    return sampler, list(sampler)


@pytest.mark.parametrize('num_samples', [10, 11, 13])
def test_uneven_world_pads_each_rank_from_its_own_shard(
        monkeypatch, num_samples):
    world_size = 4
    shards = [shard(monkeypatch, num_samples, r, world_size)
              for r in range(world_size)]
    drawn = shards[0][0].round_indices(0).tolist()
    lengths = {len(served) for _, served in shards}
    assert lengths == {len(sampler) for sampler, _ in shards} == {
        -(-num_samples // world_size)}
    owned = [set(served) for _, served in shards]
    # The remainder is spread, not dropped, and no image crosses ranks.
    assert set().union(*owned) == set(drawn)
    assert sum(len(s) for s in owned) == num_samples
    for rank, (_, served) in enumerate(shards):
        assert owned[rank] == set(drawn[rank::world_size])
        assert len(served) - len(owned[rank]) == int(
            rank >= num_samples % world_size and num_samples % world_size > 0)


def test_round_sampler_refuses_bad_sizes(monkeypatch):
    with pytest.raises(ValueError, match=r'num_samples=101 .*\[1, 100\]'):
        shard(monkeypatch, 101, 0, 1)
    with pytest.raises(ValueError, match='num_samples=3 .*world size 4'):
        shard(monkeypatch, 3, 0, 4)


def test_num_samples_above_training_set_fails_before_training(
        digits_root, tmp_path):
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), num_samples=1438)
    with pytest.raises(ValueError, match=r'num_samples=1438 .*\[1, 1437\]'):
        Runner.from_cfg(cfg).train()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only refusal')
@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_cpu_refuses_launchers_without_a_gloo_path(launcher):
    with pytest.raises(ValueError, match=f'--launcher {launcher} needs '
                       'CUDA.*dist_train.sh'):
        build_runner(Config(dict(launcher=launcher)))
