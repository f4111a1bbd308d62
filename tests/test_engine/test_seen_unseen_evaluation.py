"""The seen/unseen protocol's evaluation: SeenUnseenMAP's four mAPs against
a brute-force float64 mAP written here, and the runner's evaluation of a
digits zs run (learned and encoded seen database) against the same brute
force over codes encoded independently."""
import uuid
from types import SimpleNamespace

import numpy as np

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from conftest import tiny_digits_cfg
from mmqueryopt.engine import RetrievalDatabaseHook
from mmqueryopt.engine.config_options import ConfigError
from mmqueryopt.evaluation import PROTOCOLS, SeenUnseenMAP
from mmqueryopt.registry import DATASETS


def brute_force_map(query_codes, database_codes, query_labels,
                    database_labels):
    """Mean AP over all queries, float64, database ranked by Hamming
    distance with ties in database order; AP 0 without a relevant item."""
    query_codes = np.asarray(query_codes, dtype=np.float64)
    database_codes = np.asarray(database_codes, dtype=np.float64)
    query_labels = np.asarray(query_labels)
    database_labels = np.asarray(database_labels)
    bits = query_codes.shape[1]
    aps = []
    for code, label in zip(query_codes, query_labels):
        distance = (bits - database_codes @ code) / 2
        order = np.argsort(distance, kind='stable')
        relevant = database_labels[order] == label
        if not relevant.any():
            aps.append(0.0)
            continue
        hits = np.cumsum(relevant)
        ranks = np.arange(1, len(order) + 1)
        aps.append(np.mean(hits[relevant] / ranks[relevant]))
    return float(np.mean(aps))


def brute_force_protocols(seen_query, seen_database, unseen_query,
                          unseen_database):
    """The four protocols; each side is (codes, labels)."""
    everything = (np.concatenate([seen_database[0], unseen_database[0]]),
                  np.concatenate([seen_database[1], unseen_database[1]]))
    pairs = {'seen@seen': (seen_query, seen_database),
             'seen@all': (seen_query, everything),
             'unseen@unseen': (unseen_query, unseen_database),
             'unseen@all': (unseen_query, everything)}
    return {f'{protocol}/mAP': brute_force_map(q[0], d[0], q[1], d[1])
            for protocol, (q, d) in pairs.items()}


def random_side(generator, size, bits, labels):
    codes = torch.randint(0, 2, (size, bits), generator=generator) * 2 - 1
    return codes.float(), torch.as_tensor(labels)


def test_four_protocols_against_brute_force(capfd):
    # A logger of this test's own, made current: the last runner's would
    # write to a stream an earlier test captured.
    MMLogger.get_instance(f'seen_unseen_{uuid.uuid4().hex[:8]}',
                          log_level='INFO')
    generator = torch.Generator().manual_seed(3)
    # 5 bits: many ties, so the tie order matters. Seen classes 0..2,
    # unseen 3, 4; one seen query class (2) absent from the database.
    seen_query = random_side(generator, 7, 5, [0, 1, 2, 0, 1, 1, 0])
    seen_database = random_side(generator, 9, 5, [0, 1, 0, 1, 0, 1, 0, 1, 0])
    unseen_query = random_side(generator, 4, 5, [3, 4, 4, 3])
    unseen_database = random_side(generator, 6, 5, [4, 3, 3, 4, 4, 3])
    metric = SeenUnseenMAP()
    metric.set_database(*seen_database)
    metric.set_unseen(*unseen_query, *unseen_database)
    metric.process(None, [dict(hash_code=c, gt_label=torch.tensor([y]))
                          for c, y in zip(*seen_query)])
    got = metric.evaluate(7)
    expected = brute_force_protocols(
        *[(codes.numpy(), labels.numpy()) for codes, labels in (
            seen_query, seen_database, unseen_query, unseen_database)])
    # The fixed key names, no prefix.
    assert set(got) == {f'{p}/{key}' for p in PROTOCOLS
                        for key in ('mAP', 'num_queries_without_relevant')}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got['seen@seen/num_queries_without_relevant'] == 1
    assert got['seen@all/num_queries_without_relevant'] == 1
    # A second, worse evaluation: the log keeps the first one's four mAPs.
    metric.set_database(-seen_database[0], seen_database[1])
    metric.process(None, [dict(hash_code=c, gt_label=torch.tensor([y]))
                          for c, y in zip(*seen_query)])
    second = metric.evaluate(7)
    assert second['seen@seen/mAP'] < got['seen@seen/mAP']
    line = [x for x in capfd.readouterr().out.splitlines()
            if 'Best seen@seen' in x][-1]
    assert f"{got['seen@seen/mAP']:.4f} (evaluation 1 of" in line
    assert f"unseen@all/mAP {got['unseen@all/mAP']:.4f}" in line


def test_shared_labels_and_missing_unseen_codes_are_refused():
    generator = torch.Generator().manual_seed(0)
    metric = SeenUnseenMAP()
    metric.set_database(*random_side(generator, 4, 6, [0, 1, 2, 2]))
    results = [(torch.ones(6), torch.tensor([0]))]
    with pytest.raises(RuntimeError, match='no unseen codes'):
        metric.compute_metrics(results)
    metric.set_unseen(*random_side(generator, 2, 6, [2, 3]),
                      *random_side(generator, 2, 6, [3, 3]))
    with pytest.raises(ValueError, match=r'labels \[2\] are both seen'):
        metric.compute_metrics(results)


def zs_cfg(digits_root, work_dir):
    cfg = tiny_digits_cfg(digits_root, work_dir, rounds=1,
                          epochs_per_round=1, num_samples=32)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.unseen_ratio = 0.2
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(type='SeenUnseenMAP')
    cfg.train_cfg.val_interval = 1
    return cfg


class RecordMetrics(Hook):
    def __init__(self):
        self.metrics = []

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics))


@torch.no_grad()
def encode_independently(model, dataset_cfg, split, subset):
    """(codes, labels) of one side, read through a plain torch loader."""
    dataset = DATASETS.build(dict(dataset_cfg, split=split, subset=subset))
    loader = DataLoader(dataset, batch_size=128, collate_fn=pseudo_collate)
    model.eval()
    codes, labels = [], []
    for batch in loader:
        for sample in model.test_step(batch):
            codes.append(sample.hash_code.numpy())
            labels.append(int(sample.gt_label))
    return np.stack(codes), np.array(labels)


def test_digits_run_evaluates_the_four_protocols(digits_root, tmp_path):
    """One round, evaluated against the learned B; then the same model
    evaluated again with the seen database encoded."""
    init_default_scope('mmqueryopt')
    cfg = zs_cfg(digits_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    record = RecordMetrics()
    runner.register_hook(record)
    runner.train()
    (database_hook, ) = [h for h in runner.hooks
                         if isinstance(h, RetrievalDatabaseHook)]
    database_hook.source = 'encoded'
    database_hook.dataloader = dict(
        cfg.val_dataloader,
        dataset=dict(cfg.val_dataloader.dataset, split='train'))
    runner.val()
    learned, encoded = record.metrics

    model = runner.model
    dataset_cfg = dict(cfg.val_dataloader.dataset)
    sides = {(split, subset): encode_independently(model, dataset_cfg, split,
                                                   subset)
             for split in ('train', 'test') for subset in ('seen', 'unseen')}
    # No unseen class in training or in the database: digits 8 and 9 are
    # held out (labels 8, 9), everything else is seen.
    train_labels = runner.train_dataloader.dataset.get_gt_labels()
    assert set(train_labels) == set(range(8))
    codes, labels = model.database.retrieval_codes(model.code_length)
    assert np.array_equal(labels.numpy(), train_labels)
    assert set(sides['train', 'seen'][1]) == set(sides['test', 'seen'][1]) \
        == set(range(8))
    assert set(sides['train', 'unseen'][1]) == set(
        sides['test', 'unseen'][1]) == {8, 9}
    # The export's split: image i is a query when i % 5 == 0.
    from sklearn.datasets import load_digits
    digit = load_digits().target
    is_test = np.arange(len(digit)) % 5 == 0
    sizes = {key: len(labels) for key, (_, labels) in sides.items()}
    assert sizes == {
        ('train', 'seen'): np.sum(~is_test & (digit < 8)),  # 1,166
        ('train', 'unseen'): np.sum(~is_test & (digit >= 8)),  # 271
        ('test', 'seen'): np.sum(is_test & (digit < 8)),  # 277
        ('test', 'unseen'): np.sum(is_test & (digit >= 8)),  # 83
    }
    assert sizes['train', 'seen'] == 1166 and sizes['test', 'unseen'] == 83
    assert len(train_labels) == sizes['train', 'seen']
    for metrics, seen_database in (
            (learned, (codes.numpy(), labels.numpy())),
            (encoded, sides['train', 'seen'])):
        expected = brute_force_protocols(
            sides['test', 'seen'], seen_database, sides['test', 'unseen'],
            sides['train', 'unseen'])
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, abs=1e-9), key
    assert learned['seen@seen/mAP'] != encoded['seen@seen/mAP']


def fake_runner(**cfg):
    return SimpleNamespace(cfg=Config(cfg))


def test_mismatched_splits_are_refused_before_training():
    loader = lambda ratio: dict(dataset=dict(type='CUB200',  # noqa: E731
                                             unseen_ratio=ratio))
    hook = RetrievalDatabaseHook()
    with pytest.raises(ConfigError, match=(
            r'got val_dataloader.dataset.unseen_ratio=0, '
            r'train_dataloader.dataset.unseen_ratio=0.2 ')):
        hook.before_train(fake_runner(
            val_evaluator=dict(type='HammingMAP'), val_dataloader=loader(0),
            train_dataloader=loader(0.2)))
    with pytest.raises(ConfigError, match=(
            r'SeenUnseenMAP needs test_dataloader.dataset.unseen_ratio > 0')):
        hook.before_test(fake_runner(
            test_evaluator=dict(type='SeenUnseenMAP'),
            test_dataloader=loader(0)))
    encoded = RetrievalDatabaseHook('encoded', dataloader=loader(0))
    with pytest.raises(ConfigError, match=(
            r'RetrievalDatabaseHook.dataloader.dataset.unseen_ratio=0')):
        encoded.before_test(fake_runner(
            test_evaluator=dict(type='SeenUnseenMAP'),
            test_dataloader=loader(0.2)))
    # Consistent splits, and today's configs, pass.
    hook.before_train(fake_runner(
        val_evaluator=dict(type='SeenUnseenMAP'), val_dataloader=loader(0.2),
        train_dataloader=loader(0.2)))
    hook.before_train(fake_runner(
        val_evaluator=dict(type='HammingMAP'), val_dataloader=loader(0),
        train_dataloader=loader(0)))
