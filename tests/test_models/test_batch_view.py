"""What a training batch hands the parts: the batch view (round, pass,
labels, rows) to a neck or head that declares ``needs_batch``, the codes to
the database before the loss's view, and the pass the round hook tells."""
from types import SimpleNamespace

import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from mmqueryopt.engine import ADSHRoundHook
from mmqueryopt.engine.round_sampler import RoundBatchSampler, RoundSampler
from mmqueryopt.models import HashRetriever
from mmqueryopt.models.databases import ADSHDatabase
from mmqueryopt.models.heads import LinearHashHead


class BatchProbeHead(LinearHashHead):
    needs_batch = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def forward(self, feats, batch=None):
        self.seen.append(batch)
        return super().forward(feats)


class OrderProbeDatabase(ADSHDatabase):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def record(self, batch_indices, relaxed_codes):
        self.calls.append('record')
        super().record(batch_indices, relaxed_codes)

    def view(self, batch_indices, batch_labels, dtype):
        self.calls.append('view')
        return super().view(batch_indices, batch_labels, dtype)


def tiny_model():
    init_default_scope('mmqueryopt')
    model = HashRetriever(
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type=BatchProbeHead, code_length=6, in_channels=64),
        database=dict(type=OrderProbeDatabase, similarity='soft'))
    return model


def test_needs_batch_head_gets_the_round_pass_and_batch_in_training():
    model = tiny_model().train()
    labels = torch.tensor([0, 1, 2, 0, 1])
    model.database.prepare(labels)
    model.database.start_round(3, 40, torch.tensor([4, 1, 0]))
    model.database.start_pass(2, 30)
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(
        int(labels[i])) for i in (4, 0)]
    model.loss(torch.randn(2, 3, 16, 16), samples)
    batch = model.head.seen[-1]
    assert (batch.round_index, batch.num_rounds) == (3, 40)
    assert (batch.pass_index, batch.num_passes) == (2, 30)
    assert batch.labels.tolist() == [1, 0]
    assert batch.indices.tolist() == [4, 0]
    assert batch.similarity is None and batch.database_codes is None
    # The codes reach the database before the loss's view is taken.
    assert model.database.calls == ['record', 'view']
    model.eval()
    model.extract_feat(torch.randn(2, 3, 16, 16))
    assert model.head.seen[-1] is None


def test_round_hook_tells_the_pass_of_each_batch():
    sampler = RoundSampler(range(10), epochs_per_round=3, num_samples=5,
                           seed=0)
    batch_sampler = RoundBatchSampler(sampler, batch_size=2)
    assert batch_sampler.batches_per_pass == 3
    model = tiny_model()
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(batch_sampler=batch_sampler),
        model=model)
    hook = ADSHRoundHook()
    passes = []
    for batch_idx in range(len(batch_sampler)):
        hook.before_train_iter(runner, batch_idx)
        passes.append((model.database.pass_index,
                       model.database.num_passes))
    assert passes == [(p, 3) for p in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
