import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from conftest import tiny_digits_cfg
from mmqueryopt.engine import RoundBatchSampler, RoundSampler
from mmqueryopt.fileio import CheckpointFileError, load_checkpoint_file
from mmqueryopt.registry import MODELS


def test_round_sampler_serves_each_round_in_passes():
    sampler = RoundSampler(range(100), epochs_per_round=3, num_samples=20,
                           seed=7)
    served = []
    for epoch in range(2):  # one epoch = one round
        sampler.set_epoch(epoch)
        served.append(list(sampler))
    rounds = [sampler.round_indices(r).tolist() for r in (0, 1)]
    assert len(set(rounds[0])) == 20 and rounds[0] != rounds[1]
    for round_idx, indices in enumerate(served):
        assert len(indices) == len(sampler) == 60
        passes = [indices[p * 20:(p + 1) * 20] for p in range(3)]
        for one_pass in passes:
            assert sorted(one_pass) == sorted(rounds[round_idx])
        assert passes[0] != passes[1] != passes[2]  # reshuffled per pass
    # Reproducible: a new sampler (a resumed run) serves the same round.
    again = RoundSampler(range(100), 3, 20, seed=7)
    again.set_epoch(1)
    assert list(again) == served[1]
    # Two ranks: disjoint shards whose union is the round, in every pass.
    shards = []
    for rank in (0, 1):
        ranked = RoundSampler(range(100), 3, 20, seed=7)
        ranked.rank, ranked.world_size = rank, 2
        indices = list(ranked)
        assert len(ranked) == len(indices) == 30
        shards.append([set(indices[p * 10:(p + 1) * 10]) for p in range(3)])
        assert shards[rank][0] == shards[rank][1] == shards[rank][2]
    assert not shards[0][0] & shards[1][0]
    assert shards[0][0] | shards[1][0] == set(rounds[0])


@pytest.mark.parametrize('drop_last, sizes', [
    (False, [8, 8, 4] * 3),
    (True, [8, 8] * 3),
])
def test_round_batch_sampler_keeps_batches_within_a_pass(drop_last, sizes):
    sampler = RoundSampler(range(100), epochs_per_round=3, num_samples=20,
                           seed=3)
    batches = list(RoundBatchSampler(sampler, 8, drop_last=drop_last))
    assert [len(b) for b in batches] == sizes
    assert len(RoundBatchSampler(sampler, 8, drop_last=drop_last)) == len(
        sizes)
    # Each pass's batches are that pass of the sampler, in order.
    indices = list(sampler)
    per_pass = len(sizes) // 3
    for p in range(3):
        flat = sum(batches[p * per_pass:(p + 1) * per_pass], [])
        assert flat == indices[p * 20:p * 20 + len(flat)]


def test_round_samplers_refuse_bad_settings():
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match='sampler.epochs_per_round must'):
            RoundSampler(range(100), bad, 10)
    with pytest.raises(TypeError, match='needs train_dataloader.sampler of '
                       'type RoundSampler, got list'):
        RoundBatchSampler(list(range(10)), 4)


class RecordRounds(Hook):
    """Record, per round: B at every iteration, the U rows each batch wrote,
    and U just before ADSHRoundHook's update."""
    priority = 'HIGH'  # runs before ADSHRoundHook in after_train_epoch

    def __init__(self):
        self.codes_after_round, self.sampled_before_update = [], []
        self.codes_seen, self.written = [], []

    def before_train_epoch(self, runner):
        self.codes_seen.append([])
        self.written.append([])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        database = runner.model.database
        indices = [s.sample_idx for s in data_batch['data_samples']]
        self.codes_seen[-1].append(database.codes.clone())
        self.written[-1].append(
            (batch_idx, indices, database.sampled_codes[indices].clone()))

    def after_train_epoch(self, runner):
        self.sampled_before_update.append(
            runner.model.database.sampled_codes.clone())


class RecordAfter(Hook):
    """Record B at every round's end, after ADSHRoundHook's update."""
    priority = 'LOW'  # after ADSHRoundHook

    def __init__(self, store):
        self.store = store

    def after_train_epoch(self, runner):
        self.store.codes_after_round.append(
            runner.model.database.codes.clone())


def reference_update(codes, sampled, indices, labels, gamma=200.0):
    """ADSH's bitwise update in float64, from the facts file's formula."""
    codes, sampled = codes.double().numpy(), sampled.double().numpy()
    labels = labels.numpy()
    num_bits = codes.shape[1]
    sim = (labels[indices][:, None] == labels[None, :]).astype(float)
    full = np.zeros_like(codes)
    full[indices] = sampled
    target = num_bits * sim.T @ sampled + gamma * full
    for bit in range(num_bits):
        rest = [b for b in range(num_bits) if b != bit]
        arg = target[:, bit] - codes[:, rest] @ (
            sampled[:, rest].T @ sampled[:, bit])
        codes[:, bit] = np.where(arg >= 0, 1.0, -1.0)
    return torch.from_numpy(codes)


def test_b_changes_only_at_round_ends(digits_root, tmp_path):
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), rounds=2,
                          epochs_per_round=3, num_samples=40)
    record = RecordRounds()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(record)
    runner.register_hook(RecordAfter(record))
    initial = []
    runner.register_hook(type('Init', (Hook, ), dict(
        priority='LOWEST',
        before_train=lambda self, r: initial.append(
            r.model.database.codes.clone())))())
    runner.train()

    model = runner.model
    sampler = runner.train_dataloader.batch_sampler.sampler
    labels = model.database.labels
    assert model.database.num_database == 1437 and runner.epoch == 2
    # 3 passes of 40 images in batches of 16, 16 and 8, per round.
    batches_per_pass = 3
    assert [len(w) for w in record.written] == [3 * batches_per_pass] * 2
    previous = initial[0]
    for round_idx in range(2):
        # B is fixed within the round and changes after it.
        for codes in record.codes_seen[round_idx]:
            assert torch.equal(codes, previous)
        after = record.codes_after_round[round_idx]
        assert not torch.equal(after, previous)
        # U holds exactly this round's rows, as written by its last pass.
        indices = sampler.round_indices(round_idx)
        sampled = record.sampled_before_update[round_idx]
        written = sampled.abs().sum(1).nonzero().flatten()
        assert sorted(written.tolist()) == sorted(indices.tolist())
        last_pass = [(i, rows) for batch_idx, i, rows in record.written[
            round_idx] if batch_idx >= 2 * batches_per_pass]
        assert sorted(sum((i for i, _ in last_pass), [])) == sorted(
            indices.tolist())
        for i, rows in last_pass:
            assert torch.equal(sampled[i], rows)
        expected = reference_update(previous, sampled[indices],
                                    indices.numpy(), labels)
        torch.testing.assert_close(after.double(), expected)
        previous = after
    assert set(sampler.round_indices(0).tolist()) != set(
        sampler.round_indices(1).tolist())

    # B, U and the labels survive a checkpoint, into an empty model too.
    ckpt = glob.glob(osp.join(str(tmp_path), 'epoch_2.pth'))[0]
    fresh = MODELS.build(cfg.model)
    load_checkpoint(fresh, ckpt, map_location='cpu', strict=True)
    for name in ('codes', 'sampled_codes', 'labels'):
        torch.testing.assert_close(getattr(fresh.database, name),
                                   getattr(model.database, name),
                                   rtol=0, atol=0)

    # A model whose database was sized for another training set refuses.
    other = MODELS.build(cfg.model)
    other.database.prepare(torch.zeros(100, dtype=torch.long))
    with pytest.raises(ValueError, match='1437 database images.*has 100'):
        load_checkpoint(other, ckpt, map_location='cpu')
    # So does a model of another code length, or of other network shapes
    # (which MMEngine's non-strict loading would only warn about).
    cfg.model.head.code_length = 24
    with pytest.raises(ValueError, match='code_length=12.*model 24'):
        load_checkpoint(MODELS.build(cfg.model), ckpt, map_location='cpu')
    cfg.model.head.code_length = 12
    cfg.model.neck.ffn_dims = 48
    with pytest.raises(ValueError, match=r'neck.encoder_layers.0.ffn.linear1'
                       r'.weight: checkpoint \(32, 32\), model \(48, 32\)'):
        load_checkpoint(MODELS.build(cfg.model), ckpt, map_location='cpu')


def test_test_tool_evaluates_a_checkpoint(digits_root, tmp_path):
    """The checkpoint loads through MMEngine (weights_only=True) and both
    database sources give an mAP."""
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), rounds=1,
                          epochs_per_round=1, num_samples=32)
    Runner.from_cfg(cfg.copy()).train()
    ckpt = osp.join(str(tmp_path), 'epoch_1.pth')
    results = {}
    # 'auto': the ADSH database holds B, so the learned protocol; the
    # encoded database is the training split read like the queries.
    for source in ('learned', 'encoded', 'auto'):
        test_cfg = cfg.copy()
        test_cfg.load_from = ckpt
        test_cfg.custom_hooks = [
            dict(type='ADSHRoundHook'),
            dict(type='RetrievalDatabaseHook', source=source)
        ]
        results[source] = Runner.from_cfg(test_cfg).test()
    for metrics in results.values():
        assert 0 < metrics['retrieval/mAP'] <= 1
    assert results['learned'] != results['encoded']
    assert results['auto'] == results['learned']


class _GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, name)``."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, self.name)


def test_weights_only_allows_history_buffer_methods_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'x.pth')
    torch.save({'m': _GetattrPayload('mean')}, path)
    assert load_checkpoint_file(path)['m'] is HistoryBuffer.mean
    torch.save({'m': _GetattrPayload('__init__')}, path)
    with pytest.raises(CheckpointFileError,
                       match="only HistoryBuffer statistics"):
        load_checkpoint_file(path)
