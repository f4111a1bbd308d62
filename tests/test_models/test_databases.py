"""The database slot: ADSH's learned database through a checkpoint (and one
of the layout before the slot), the encoded strategy's contract, and the
round hook's and metric hook's use of both."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from mmqueryopt.models import (ADSHDatabase, DatabaseView, EncodedDatabase,
                               HashRetriever)
from mmqueryopt.registry import MODELS

TINY = dict(
    type='HashRetriever',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                  base_channels=8, out_indices=(2, 3)),
    neck=dict(type='SubtleFeatureNeck', in_channels=(32, 64), embed_dims=16,
              top_down_channels=8, num_heads=2, ffn_dims=16),
    head=dict(type='QueryHashHead', code_length=4, relaxed_dims=8,
              embed_dims=16, num_heads=2, ffn_dims=16))


def build(**change) -> HashRetriever:
    init_default_scope('mmqueryopt')
    return MODELS.build(dict(TINY, **change))


def trained_state(model: HashRetriever) -> dict:
    """One ADSH round on random images: B binary, U partly written."""
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    model.database.prepare(labels, torch.Generator().manual_seed(0))
    model.database.start_round(0, 1, torch.tensor([0, 2, 4]))
    samples = [
        DataSample(metainfo=dict(sample_idx=i)).set_gt_label(int(labels[i]))
        for i in (0, 2, 4)
    ]
    model.train()
    model(torch.randn(3, 3, 32, 32), samples, mode='loss')
    model.database.end_round(torch.tensor([0, 2, 4]))
    return model.state_dict()


def test_retriever_builds_the_database_with_the_heads_width():
    model = build()
    assert isinstance(model.database, ADSHDatabase)
    assert model.database.codes.shape == (0, 8)
    assert build(database=dict(type='ADSHDatabase', gamma=3.0,
                               similarity='soft')).database.gamma == 3.0


def test_state_round_trips_and_the_old_layout_still_loads():
    state = trained_state(build())
    assert set(state['database.codes'].unique().tolist()) <= {-1.0, 1.0}
    assert state['database.sampled_codes'].abs().sum(1).nonzero().flatten(
    ).tolist() == [0, 2, 4]
    fresh = build()
    fresh.load_state_dict(state, strict=True)
    for name in ('codes', 'sampled_codes', 'labels'):
        assert torch.equal(getattr(fresh.database, name),
                           state[f'database.{name}'])
    # Checkpoints written before the database slot named the buffers
    # database_codes, sampled_codes and database_labels on the retriever.
    legacy = {
        {'database.codes': 'database_codes',
         'database.sampled_codes': 'sampled_codes',
         'database.labels': 'database_labels'}.get(key, key): value
        for key, value in state.items()
    }
    assert 'database_codes' in legacy and 'database.codes' not in legacy
    old = build()
    old.load_state_dict(legacy, strict=True)
    assert torch.equal(old.database.codes, state['database.codes'])
    assert torch.equal(old.database.labels, state['database.labels'])
    codes, labels = old.database.retrieval_codes(4)
    assert torch.equal(codes, state['database.codes'][:, :4])
    assert torch.equal(labels, state['database.labels'])


def test_prepared_database_refuses_another_training_set():
    model = build()
    trained_state(model)
    model.database.prepare(torch.tensor([0, 1, 2, 0, 1, 2]))  # same: kept
    with pytest.raises(ValueError, match='does not match the training set'):
        model.database.prepare(torch.tensor([0, 1, 2, 0, 1, 1]))


def test_encoded_database_holds_nothing_and_sees_only_the_round():
    database = EncodedDatabase(code_width=8)
    assert database.num_database == 0 and not list(database.buffers())
    database.prepare(torch.arange(5))
    database.start_round(2, 9, torch.tensor([0, 1]))
    database.start_pass(4, 30)
    database.record(torch.tensor([0]), torch.zeros(1, 8))
    indices, labels = torch.tensor([0]), torch.tensor([3])
    view = database.view(indices, labels, torch.float32)
    assert view.labels is labels and view.indices is indices
    assert view == DatabaseView(round_index=2, num_rounds=9, pass_index=4,
                                num_passes=30, labels=labels,
                                indices=indices)
    assert database.retrieval_codes(4) is None
    model = build(database=dict(type='EncodedDatabase'))
    assert set(model.state_dict()) == set(build().state_dict()) - {
        'database.codes', 'database.sampled_codes', 'database.labels'}


def test_learned_evaluation_needs_a_database_with_codes():
    from mmqueryopt.engine import RetrievalDatabaseHook
    runner = type('Runner', (), dict(model=build(
        database=dict(type='EncodedDatabase'))))()
    with pytest.raises(RuntimeError, match="EncodedDatabase holds none: use "
                       r"RetrievalDatabaseHook\(source='encoded'"):
        RetrievalDatabaseHook._learned(runner)
    runner.model = build()
    with pytest.raises(RuntimeError, match='--database encoded'):
        RetrievalDatabaseHook._learned(runner)


def test_adsh_loss_refuses_a_database_without_codes():
    from mmqueryopt.models import ADSHLoss
    with pytest.raises(TypeError, match="holds no codes: use "
                       "dict\\(type='ADSHDatabase'\\)"):
        ADSHLoss()(torch.zeros(2, 8), DatabaseView(round_index=0))
