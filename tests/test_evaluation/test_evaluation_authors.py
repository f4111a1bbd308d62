"""``authors_protocol``: the authors' mAP routine, checked against a literal
transcription of their loop with the tie order of their (stable) GPU sort."""
import numpy as np
import pytest

from mmqueryopt.evaluation.functional import (evaluate_retrieval,
                                              mean_average_precision)


def stable_argsort(hamm):
    """Their ``torch.argsort`` on a GPU: a stable radix sort for more than
    4,096 items. numpy's default sort is not stable."""
    return np.argsort(hamm, kind='stable')


def reverse_ties_argsort(hamm):
    """Ties in decreasing database index: another order, to show that a
    case can tell tie orders apart."""
    return np.lexsort((-np.arange(len(hamm)), hamm))


def their_calc_top_map(qB, rB, queryL, retrievalL, topk,
                       argsort=stable_argsort):
    """The authors' CalcTopMap, kept literal but for the sort."""
    num_query = queryL.shape[0]
    topkmap = 0
    for iter in range(num_query):
        gnd = (np.dot(queryL[iter, :], retrievalL.transpose())
               > 0).astype(np.float32)
        hamm = 0.5 * (rB.shape[1] - np.dot(qB[iter, :], rB.transpose()))
        ind = argsort(hamm)
        gnd = gnd[ind]
        tgnd = gnd[0:topk]
        tsum = np.sum(tgnd).astype(int)
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap_ = np.mean(count / (tindex))
        topkmap = topkmap + topkmap_
    topkmap = topkmap / num_query
    return topkmap


def tie_heavy_case(seed, num_queries, num_items, nbits, multi_hot):
    """{-1, +1} float32 codes and {0, 1} float32 label matrices (their
    inputs), with class ids or multi-hot rows, and queries that have no
    relevant item (an unseen class, or no label at all)."""
    rng = np.random.default_rng(seed)
    query = rng.choice([-1., 1.], (num_queries, nbits)).astype(np.float32)
    database = rng.choice([-1., 1.], (num_items, nbits)).astype(np.float32)
    if multi_hot:
        query_labels = (rng.random((num_queries, 5)) < 0.25).astype(np.int64)
        database_labels = (rng.random((num_items, 5)) < 0.1).astype(np.int64)
        return (query, database, query_labels, database_labels,
                query_labels.astype(np.float32),
                database_labels.astype(np.float32))
    query_labels = rng.integers(0, 9, num_queries)
    database_labels = rng.integers(0, 8, num_items)
    one_hot = np.eye(9, dtype=np.float32)
    return (query, database, query_labels, database_labels,
            one_hot[query_labels], one_hot[database_labels])


@pytest.mark.parametrize('nbits, num_items', [(3, 5000), (4, 1500),
                                              (12, 700)])
@pytest.mark.parametrize('multi_hot', [False, True])
def test_authors_protocol_matches_their_loop(nbits, num_items, multi_hot):
    query, database, query_labels, database_labels, queryL, retrievalL = \
        tie_heavy_case(nbits, 40, num_items, nbits, multi_hot)
    relevant = queryL @ retrievalL.T > 0
    assert (relevant.sum(1) == 0).any()
    map_topk = (None, 1, 100, num_items - 1, num_items + 5)
    results = evaluate_retrieval(
        query,
        database,
        query_labels,
        database_labels,
        map_topk=map_topk,
        authors_protocol=True,
        chunk_size=7)
    for topk in map_topk:
        theirs = their_calc_top_map(query, database, queryL, retrievalL,
                                    -1 if topk is None else topk)
        key = 'mAP_authors' if topk is None else f'mAP@{topk}_authors'
        assert results[key] == pytest.approx(theirs, abs=1e-12), key
    if nbits <= 4:
        # Another tie order moves the number far beyond the tolerance.
        reverse_ties = their_calc_top_map(query, database, queryL,
                                          retrievalL, -1,
                                          reverse_ties_argsort)
        assert abs(results['mAP_authors'] - reverse_ties) > 1e-6
    assert mean_average_precision(
        query, database, query_labels, database_labels,
        authors_protocol=True) == results['mAP_authors']


def test_last_ranked_item_is_dropped():
    # Database: items 0..5 at distance 0, 6..9 at distance 3 (the farthest).
    # Query 0's only relevant item is 9: last by index among the farthest,
    # so their topk=-1 drops it. Query 1's is 6: a stable sort ranks it 7th
    # and keeps it. Query 2 has no relevant item at all.
    database = np.array([[1., 1., 1.]] * 6 + [[-1., -1., -1.]] * 4,
                        dtype=np.float32)
    query = np.ones((3, 3), dtype=np.float32)
    database_labels = np.array([0] * 6 + [1, 2, 2, 3])
    query_labels = np.array([3, 1, 4])
    one_hot = np.eye(5, dtype=np.float32)
    results = evaluate_retrieval(
        query,
        database,
        query_labels,
        database_labels,
        map_topk=(None, 9, 10),
        authors_protocol=True)
    assert results['mAP'] == pytest.approx((1 / 10 + 1 / 7) / 3)
    assert results['mAP_authors'] == pytest.approx((0 + 1 / 7) / 3)
    assert results['mAP@9_authors'] == pytest.approx((0 + 1 / 7) / 3)
    assert results['mAP@10_authors'] == pytest.approx(results['mAP'])
    for topk, key in ((-1, 'mAP_authors'), (9, 'mAP@9_authors')):
        assert their_calc_top_map(query, database, one_hot[query_labels],
                                  one_hot[database_labels],
                                  topk) == pytest.approx(results[key])


def test_one_item_database():
    # gnd[0:-1] of a single item is empty: every AP is 0.
    results = evaluate_retrieval(
        np.ones((2, 4)),
        np.ones((1, 4)),
        np.array([0, 1]),
        np.array([0]),
        authors_protocol=True)
    assert results['mAP'] == 0.5
    assert results['mAP_authors'] == 0.0
