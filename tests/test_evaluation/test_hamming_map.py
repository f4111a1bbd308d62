import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from mmqueryopt.evaluation import HammingMAP, mean_average_precision
from mmqueryopt.fileio import read_codes_file
from test_evaluation_authors import their_calc_top_map


def brute_force_map(query, database, query_labels, database_labels):
    """Stable argsort per query, float64 cumulative precision."""
    aps = []
    for code, label in zip(query, query_labels):
        dist = (code[None] != database).sum(1)
        order = np.argsort(dist, kind='stable')
        relevant = (database_labels[order] == label).astype(float)
        hits = np.cumsum(relevant)
        ranks = np.arange(1, len(order) + 1)
        aps.append((hits / ranks * relevant).sum() / max(relevant.sum(), 1))
    return float(np.mean(aps))


def samples(codes, labels):
    """Data samples as the evaluator passes them to ``process`` (dicts)."""
    out = []
    for code, label in zip(codes, labels):
        sample = DataSample().set_gt_label(int(label))
        sample.set_field(torch.from_numpy(code).float(), 'hash_code')
        out.append(sample.to_dict())
    return out


def test_metric_matches_brute_force_and_dumps(tmp_path):
    rng = np.random.default_rng(0)
    query = rng.choice([-1, 1], size=(40, 6))
    database = rng.choice([-1, 1], size=(200, 6))
    query_labels = rng.integers(0, 5, 40)
    database_labels = rng.integers(0, 5, 200)
    dump = str(tmp_path / 'out' / 'codes.npz')
    metric = HammingMAP(
        map_topk=(10, ), precision_k=(5, ), radius=(1, ),
        tie_break='expected', authors_protocol=True, dump_file=dump)
    metric.set_database(
        torch.from_numpy(database).float(), torch.from_numpy(database_labels))
    metric.process({}, samples(query[:25], query_labels[:25]))
    metric.process({}, samples(query[25:], query_labels[25:]))
    results = metric.evaluate(40)
    expected = brute_force_map(query, database, query_labels,
                               database_labels)
    assert results['retrieval/mAP'] == pytest.approx(expected, abs=1e-9)
    assert results['retrieval/mAP'] == pytest.approx(
        mean_average_precision(query, database, query_labels,
                               database_labels))
    one_hot = np.eye(5)
    assert results['retrieval/mAP_authors'] == pytest.approx(
        their_calc_top_map(query, database, one_hot[query_labels],
                           one_hot[database_labels], -1),
        abs=1e-12)
    assert {
        'retrieval/mAP@10', 'retrieval/P@5', 'retrieval/P@r1',
        'retrieval/mAP_expected', 'retrieval/mAP_authors'
    } <= set(results)
    assert not any('PR_' in key for key in results)
    saved = read_codes_file(dump, need_labels=True)
    np.testing.assert_array_equal(saved.side('query').signs(), query)
    np.testing.assert_array_equal(saved.side('database').labels,
                                  database_labels)
    curve = saved.extras
    assert curve['pr_precision'].shape == curve['pr_recall'].shape == (7, )
    assert curve['pr_recall'][-1] == pytest.approx(1.0)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
        'codes.npz'
    ]


def test_metric_without_database_says_which_hook():
    metric = HammingMAP()
    metric.process({}, samples(np.ones((1, 4)), [0]))
    with pytest.raises(RuntimeError, match='RetrievalDatabaseHook'):
        metric.evaluate(1)
