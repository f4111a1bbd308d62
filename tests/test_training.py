import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from conftest import tiny_digits_cfg
from mmqueryopt.engine import RoundSampler
from mmqueryopt.registry import MODELS


def test_round_sampler_resamples_per_round_and_shards():
    sampler = RoundSampler(range(100), epochs_per_round=3, num_samples=20,
                           seed=7)
    epochs = []
    for epoch in range(6):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    rounds = [sampler.round_indices(r).tolist() for r in (0, 1)]
    assert len(set(rounds[0])) == 20 and rounds[0] != rounds[1]
    for epoch, served in enumerate(epochs):
        assert sorted(served) == sorted(rounds[epoch // 3])
    assert epochs[0] != epochs[1]  # reshuffled within the round
    # Two ranks: disjoint shards whose union is the round, fixed per round.
    shards = []
    for rank in (0, 1):
        ranked = RoundSampler(range(100), 3, 20, seed=7)
        ranked.rank, ranked.world_size = rank, 2
        shards.append([])
        for epoch in range(3):
            ranked.set_epoch(epoch)
            shards[rank].append(set(ranked))
        assert shards[rank][0] == shards[rank][1] == shards[rank][2]
        assert len(ranked) == 10
    assert not shards[0][0] & shards[1][0]
    assert shards[0][0] | shards[1][0] == set(rounds[0])
    with pytest.raises(ValueError, match='num_samples=101'):
        RoundSampler(range(100), 1, 101)


class RecordRounds(Hook):
    """Record U at every epoch's end, before ADSHRoundHook's update."""
    priority = 'HIGH'  # runs before ADSHRoundHook in after_train_epoch

    def __init__(self):
        self.codes_after_epoch, self.sampled_before_update = [], []

    def after_train_epoch(self, runner):
        model = runner.model
        self.sampled_before_update.append(model.sampled_codes.clone())


class RecordAfter(Hook):
    """Record B at every epoch's end, after ADSHRoundHook's update."""
    priority = 'LOW'  # after ADSHRoundHook

    def __init__(self, store):
        self.store = store

    def after_train_epoch(self, runner):
        self.store.codes_after_epoch.append(
            runner.model.database_codes.clone())


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
                          epochs_per_round=2, num_samples=48)
    record = RecordRounds()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(record)
    runner.register_hook(RecordAfter(record))
    initial = []
    runner.register_hook(type('Init', (Hook, ), dict(
        priority='LOWEST',
        before_train=lambda self, r: initial.append(
            r.model.database_codes.clone())))())
    runner.train()

    model = runner.model
    sampler = runner.train_dataloader.sampler
    labels = model.database_labels
    assert model.num_database == 1437
    codes = record.codes_after_epoch
    # Epochs 0 and 2 are mid-round: B unchanged; 1 and 3 end a round.
    torch.testing.assert_close(codes[0], initial[0], rtol=0, atol=0)
    assert not torch.equal(codes[1], codes[0])
    torch.testing.assert_close(codes[2], codes[1], rtol=0, atol=0)
    assert not torch.equal(codes[3], codes[2])
    for round_idx, epoch in ((0, 1), (1, 3)):
        indices = sampler.round_indices(round_idx)
        sampled = record.sampled_before_update[epoch]
        # U holds exactly this round's sampled rows.
        written = sampled.abs().sum(1).nonzero().flatten()
        assert sorted(written.tolist()) == sorted(indices.tolist())
        previous = initial[0] if round_idx == 0 else codes[epoch - 1]
        expected = reference_update(previous, sampled[indices],
                                    indices.numpy(), labels)
        torch.testing.assert_close(codes[epoch].double(), expected)
    assert set(sampler.round_indices(0).tolist()) != set(
        sampler.round_indices(1).tolist())

    # B, U and the labels survive a checkpoint, into an empty model too.
    ckpt = glob.glob(osp.join(str(tmp_path), 'epoch_4.pth'))[0]
    fresh = MODELS.build(cfg.model)
    load_checkpoint(fresh, ckpt, map_location='cpu', strict=True)
    for name in ('database_codes', 'sampled_codes', 'database_labels'):
        torch.testing.assert_close(getattr(fresh, name), getattr(model, name),
                                   rtol=0, atol=0)

    # A model whose database was sized for another training set refuses.
    other = MODELS.build(cfg.model)
    other.init_database(torch.zeros(100, dtype=torch.long))
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
    from test import database_loader
    results = {}
    for source in ('learned', 'encoded'):
        test_cfg = cfg.copy()
        test_cfg.load_from = ckpt
        test_cfg.custom_hooks = [
            dict(type='ADSHRoundHook'),
            dict(type='RetrievalDatabaseHook', source=source,
                 dataloader=database_loader(cfg) if source == 'encoded'
                 else None)
        ]
        results[source] = Runner.from_cfg(test_cfg).test()
    for metrics in results.values():
        assert 0 < metrics['retrieval/mAP'] <= 1
    assert results['learned'] != results['encoded']


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
    assert torch.load(path)['m'] is HistoryBuffer.mean
    torch.save({'m': _GetattrPayload('__init__')}, path)
    with pytest.raises(Exception, match="only HistoryBuffer statistics"):
        torch.load(path)
