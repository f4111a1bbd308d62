"""Tests of the functional retrieval metrics against plain brute force."""
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from mmqueryopt.evaluation.functional import (
    evaluate_retrieval, mean_average_precision, precision_at_k,
    precision_recall_curve, precision_within_radius, recall_at_k,
    recall_within_radius)
from mmqueryopt.evaluation.functional import buckets as buckets_module
from mmqueryopt.evaluation.functional import retrieval as retrieval_module
from mmqueryopt.evaluation.functional.buckets import BucketCounter
from mmqueryopt.evaluation.functional.expected import hypergeometric_pmf

# ---------------------------------------------------------------- brute force


def brute_relevance(query_labels, database_labels):
    if query_labels.ndim == 1:
        return query_labels[:, None] == database_labels[None, :]
    return (
        query_labels.astype(np.int64) @ database_labels.T.astype(np.int64)) > 0


def brute_distance(query_bits, database_bits):
    return (query_bits[:, None, :] != database_bits[None, :, :]).sum(-1)


def ranked_metrics(ranked_relevant, k):
    """AP@k (ADSH: divided by hits in top k), hits in top k, for one order."""
    top = ranked_relevant[:k].astype(np.float64)
    hits = top.sum()
    if hits == 0:
        return 0.0, 0.0
    precision = np.cumsum(top) / np.arange(1, len(top) + 1)
    return float((precision * top).sum() / hits), float(hits)


def brute_force(query_bits, database_bits, relevant, topk):
    """Mean AP@k, P@k, R@k and no-hit count with a stable sort per query."""
    distance = brute_distance(query_bits, database_bits)
    num_items = database_bits.shape[0]
    k = num_items if topk is None else topk
    aps, precisions, recalls, no_hit = [], [], [], 0
    for i in range(len(query_bits)):
        order = np.argsort(distance[i], kind='stable')
        ap, hits = ranked_metrics(relevant[i][order], k)
        aps.append(ap)
        precisions.append(hits / min(k, num_items))
        total = relevant[i].sum()
        recalls.append(hits / total if total else 0.0)
        no_hit += hits == 0
    return np.mean(aps), np.mean(precisions), np.mean(recalls), no_hit


def brute_force_expected(query_bits, database_bits, relevant, topk):
    """The same metrics averaged over every database permutation.

    A stable sort of a uniformly permuted database gives each order within
    the ties with equal probability, so this is the exact expectation.
    """
    distance = brute_distance(query_bits, database_bits)
    num_items = database_bits.shape[0]
    k = num_items if topk is None else topk
    permutations = list(itertools.permutations(range(num_items)))
    aps, precisions, recalls, no_hit = [], [], [], 0.0
    for i in range(len(query_bits)):
        per_order = []
        for perm in permutations:
            perm = np.array(perm)
            order = perm[np.argsort(distance[i][perm], kind='stable')]
            per_order.append(ranked_metrics(relevant[i][order], k))
        ap, hits = np.mean(per_order, axis=0)
        aps.append(ap)
        precisions.append(hits / min(k, num_items))
        total = relevant[i].sum()
        recalls.append(hits / total if total else 0.0)
        no_hit += np.mean([h == 0 for _, h in per_order])
    return np.mean(aps), np.mean(precisions), np.mean(recalls), no_hit


def brute_force_radius(query_bits, database_bits, relevant):
    """(nbits + 1,) mean precision and recall within each radius."""
    distance = brute_distance(query_bits, database_bits)
    precision, recall = [], []
    for r in range(query_bits.shape[1] + 1):
        within = distance <= r
        retrieved = within.sum(1)
        hits = (within & relevant).sum(1)
        total = relevant.sum(1)
        precision.append(
            np.mean([h / n if n else 0.0 for h, n in zip(hits, retrieved)]))
        recall.append(
            np.mean([h / t if t else 0.0 for h, t in zip(hits, total)]))
    return np.array(precision), np.array(recall)


# ------------------------------------------------------------------ fixtures


def random_case(seed, num_queries, num_items, nbits, multi_hot):
    """Short codes (many ties), some queries without any relevant item."""
    rng = np.random.default_rng(seed)
    query_bits = rng.integers(0, 2, (num_queries, nbits))
    database_bits = rng.integers(0, 2, (num_items, nbits))
    if multi_hot:
        query_labels = (rng.random((num_queries, 6)) < 0.2).astype(np.int64)
        database_labels = (rng.random((num_items, 6)) < 0.2).astype(np.int64)
    else:
        # Class 5 exists only among queries: those have no relevant item.
        query_labels = rng.integers(0, 6, num_queries)
        database_labels = rng.integers(0, 5, num_items)
    return query_bits, database_bits, query_labels, database_labels


def pack(bits):
    return np.packbits(bits.astype(np.uint8), axis=1)


# --------------------------------------------------------------------- tests


def test_hand_worked_example():
    # Query 111; database (distance, relevant):
    #   d0 (1, no), d1 (1, yes), d2 (0, yes), d3 (2, yes), d4 (1, no).
    # Index order: d2 d0 d1 d4 d3 -> relevant at ranks 1, 3, 5:
    #   AP = (1/1 + 2/3 + 3/5) / 3 = 34/45.
    # Expected: the tie {d0, d1, d4} puts d1 at rank 2, 3 or 4 (1/3 each):
    #   E[prec(d1)] = (2/2 + 2/3 + 2/4) / 3 = 13/18,
    #   AP = (1 + 13/18 + 3/5) / 3 = 209/270.
    # Top 3: index order d2 d0 d1 -> AP@3 = (1 + 2/3) / 2 = 5/6, P@3 = 2/3.
    # Expected AP@3: d1 at rank 2 -> (1 + 1) / 2 = 1; rank 3 -> (1 + 2/3) / 2
    #   = 5/6; rank 4 (not retrieved) -> 1/1 = 1; mean 17/18.
    #   E[hits in top 3] = 1 + 2/3, so P@3 = 5/9 and R@3 = 5/9.
    # Within radius 1: 4 items, 2 relevant -> P@r1 = 1/2, R@r1 = 2/3.
    query = np.array([[1, 1, 1]])
    database = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, 1], [-1, -1, 1],
                         [1, 1, -1]])
    query_labels = np.array([0])
    database_labels = np.array([1, 0, 0, 0, 1])
    results = evaluate_retrieval(
        query,
        database,
        query_labels,
        database_labels,
        map_topk=(None, 3),
        precision_k=(3, ),
        recall_k=(3, ),
        radius=(1, ),
        tie_break=('index', 'expected'))
    expected = {
        'mAP': 34 / 45,
        'mAP_expected': 209 / 270,
        'mAP@3': 5 / 6,
        'mAP@3_expected': 17 / 18,
        'P@3': 2 / 3,
        'P@3_expected': 5 / 9,
        'R@3': 2 / 3,
        'R@3_expected': 5 / 9,
        'P@r1': 1 / 2,
        'R@r1': 2 / 3,
        'num_queries_without_relevant': 0,
        'num_queries_without_relevant@3': 0,
        'num_queries_without_relevant@3_expected': 0.0,
    }
    assert results.keys() == expected.keys()
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize('multi_hot', [False, True])
@pytest.mark.parametrize('seed', [0, 1])
def test_index_order_matches_brute_force(seed, multi_hot):
    query_bits, database_bits, query_labels, database_labels = random_case(
        seed, num_queries=25, num_items=160, nbits=6, multi_hot=multi_hot)
    relevant = brute_relevance(query_labels, database_labels)
    results = evaluate_retrieval(
        query_bits,
        database_bits,
        query_labels,
        database_labels,
        map_topk=(None, 1, 100),
        precision_k=(1, 10, 100, 500),
        recall_k=(1, 100),
        radius=(0, 2, 9),
        pr_curve=True,
        chunk_size=7)
    assert results['num_queries_without_relevant'] == int(
        (relevant.sum(1) == 0).sum())
    assert results['num_queries_without_relevant'] > 0
    for topk in (None, 1, 100):
        ap, _, _, no_hit = brute_force(query_bits, database_bits, relevant,
                                       topk)
        key = 'mAP' if topk is None else f'mAP@{topk}'
        assert results[key] == pytest.approx(ap, abs=1e-12)
        if topk is not None:
            assert results[f'num_queries_without_relevant@{topk}'] == no_hit
    for k in (1, 10, 100, 500):
        _, precision, recall, _ = brute_force(query_bits, database_bits,
                                              relevant, k)
        assert results[f'P@{k}'] == pytest.approx(precision, abs=1e-12)
        if k in (1, 100):
            assert results[f'R@{k}'] == pytest.approx(recall, abs=1e-12)
    precision, recall = brute_force_radius(query_bits, database_bits, relevant)
    np.testing.assert_allclose(results['PR_precision'], precision, atol=1e-12)
    np.testing.assert_allclose(results['PR_recall'], recall, atol=1e-12)
    for r in (0, 2, 9):
        assert results[f'P@r{r}'] == pytest.approx(precision[min(r, 6)])
        assert results[f'R@r{r}'] == pytest.approx(recall[min(r, 6)])


@pytest.mark.parametrize('nbits', [1, 64, 300])
def test_any_code_length(nbits):
    query_bits, database_bits, query_labels, database_labels = random_case(
        11, num_queries=6, num_items=40, nbits=nbits, multi_hot=False)
    relevant = brute_relevance(query_labels, database_labels)
    results = evaluate_retrieval(
        query_bits,
        database_bits,
        query_labels,
        database_labels,
        map_topk=(None, 10),
        tie_break=('index', 'expected'))
    for topk in (None, 10):
        ap = brute_force(query_bits, database_bits, relevant, topk)[0]
        key = 'mAP' if topk is None else f'mAP@{topk}'
        assert results[key] == pytest.approx(ap, abs=1e-12)
    if nbits == 1:  # two buckets; check the expectation by enumeration
        database_bits = database_bits[:7]
        ap = brute_force_expected(query_bits, database_bits, relevant[:, :7],
                                  None)[0]
        assert mean_average_precision(
            query_bits,
            database_bits,
            query_labels,
            database_labels[:7],
            tie_break='expected') == pytest.approx(
                ap, abs=1e-12)


@pytest.mark.parametrize('multi_hot', [False, True])
def test_expected_order_matches_enumeration(multi_hot):
    # 7 items over 3 distances: 5040 database orders to average over.
    query_bits, database_bits, query_labels, database_labels = random_case(
        3, num_queries=6, num_items=7, nbits=2, multi_hot=multi_hot)
    relevant = brute_relevance(query_labels, database_labels)
    results = evaluate_retrieval(
        query_bits,
        database_bits,
        query_labels,
        database_labels,
        map_topk=(None, 1, 3, 100),
        precision_k=(1, 3, 100),
        recall_k=(1, 3, 100),
        tie_break='expected')
    for topk in (None, 1, 3, 100):
        ap, precision, recall, no_hit = brute_force_expected(
            query_bits, database_bits, relevant, topk)
        suffix = '' if topk is None else f'@{topk}'
        assert results[f'mAP{suffix}_expected'] == pytest.approx(ap, abs=1e-12)
        if topk is not None:
            assert results[f'P@{topk}_expected'] == pytest.approx(
                precision, abs=1e-12)
            assert results[f'R@{topk}_expected'] == pytest.approx(
                recall, abs=1e-12)
            assert results[f'num_queries_without_relevant@{topk}_expected'] \
                == pytest.approx(no_hit, abs=1e-12)


def test_expected_order_on_one_big_tie():
    # One bucket of 8 items, 3 relevant: every one of the 56 placements of
    # the relevant items is equally likely; AP@4 needs the hypergeometric mix.
    database = np.zeros((8, 4), dtype=np.int64)
    database_labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    aps_full, aps_top4 = [], []
    for slots in itertools.combinations(range(8), 3):
        ranked = np.isin(np.arange(8), slots)
        aps_full.append(ranked_metrics(ranked, 8)[0])
        aps_top4.append(ranked_metrics(ranked, 4)[0])
    results = evaluate_retrieval(
        np.zeros((1, 4), dtype=np.int64),
        database,
        np.array([0]),
        database_labels,
        map_topk=(None, 4),
        tie_break='expected')
    assert results['mAP_expected'] == pytest.approx(
        np.mean(aps_full), abs=1e-12)
    assert results['mAP@4_expected'] == pytest.approx(
        np.mean(aps_top4), abs=1e-12)


@pytest.mark.parametrize('multi_hot', [False, True])
@pytest.mark.parametrize('wide', [False, True])
@pytest.mark.parametrize('integer_products', [True, False])
def test_index_ranks_match_stable_sort(multi_hot, wide, integer_products,
                                       monkeypatch):
    # int64 keys, as huge chunks get them, too.
    if wide:
        monkeypatch.setattr(buckets_module, '_INT32_KEY_LIMIT', 8)
    query_bits, database_bits, query_labels, database_labels = random_case(
        4, num_queries=9, num_items=41, nbits=4, multi_hot=multi_hot)
    relevant = brute_relevance(query_labels, database_labels)
    # Three passes of four queries, with the CPU's or the GPU's products.
    counter = BucketCounter(
        torch.from_numpy(database_bits).float() * 2 - 1,
        pass_pairs=41 * 4,
        integer_products=integer_products)
    buckets = counter.count(
        torch.from_numpy(query_bits).float() * 2 - 1,
        *torch.from_numpy(relevant).nonzero(as_tuple=True),
        index_ranks=True)
    distance = brute_distance(query_bits, database_bits)
    expected = []
    for i in range(len(query_bits)):
        rank = np.empty(41, dtype=np.int64)
        rank[np.argsort(distance[i], kind='stable')] = np.arange(1, 42)
        expected += [(i, r) for r in sorted(rank[relevant[i]])]
    got = list(zip(buckets.hit_query.tolist(), buckets.hit_rank.tolist()))
    assert got == expected
    assert buckets.items.tolist() == [
        np.bincount(row, minlength=5).tolist() for row in distance
    ]
    assert buckets.relevant.tolist() == [
        np.bincount(row[rel], minlength=5).tolist()
        for row, rel in zip(distance, relevant)
    ]


@pytest.mark.parametrize('code_format',
                         ['plus_minus', 'zero_one', 'bool', 'packed'])
@pytest.mark.parametrize('backend', ['numpy', 'torch'])
def test_input_formats_agree(code_format, backend):
    query_bits, database_bits, query_labels, database_labels = random_case(
        5, num_queries=12, num_items=90, nbits=10, multi_hot=True)
    options = dict(
        map_topk=(None, 20),
        precision_k=(5, ),
        radius=(2, ),
        tie_break=('index', 'expected'),
        pr_curve=True)
    reference = evaluate_retrieval(query_bits, database_bits, query_labels,
                                   database_labels, **options)
    convert = {
        'plus_minus': lambda b: b * 2 - 1,
        'zero_one': lambda b: b.astype(np.float32),
        'bool': lambda b: b.astype(bool),
        'packed': pack,
    }[code_format]
    arrays = [
        convert(query_bits),
        convert(database_bits), query_labels, database_labels
    ]
    if backend == 'torch':
        arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    results = evaluate_retrieval(
        *arrays, nbits=10 if code_format == 'packed' else None, **options)
    assert results.keys() == reference.keys()
    for key, value in reference.items():
        np.testing.assert_allclose(
            results[key], value, rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.parametrize('multi_hot', [False, True])
def test_chunks_and_passes_do_not_change_results(multi_hot, monkeypatch):
    options = dict(
        map_topk=(None, 50, 97),
        precision_k=(10, ),
        recall_k=(10, ),
        radius=(2, ),
        tie_break=('index', 'expected'),
        pr_curve=True)
    # A query's value must not see its chunk: sums whose order follows the
    # chunk's table width moved a bit in only some of these cases, and in
    # different ones under each ATEN_CPU_CAPABILITY, hence several.
    for seed in range(4, 12):
        case = random_case(
            seed, num_queries=31, num_items=300, nbits=6, multi_hot=multi_hot)
        monkeypatch.setattr(retrieval_module, '_CPU_PASS_PAIRS', 2**19)
        reference = evaluate_retrieval(*case, chunk_size=31, **options)
        for chunk_size, pass_pairs in ((1, 300), (4, 900), (None, 1500),
                                       (None, 10**6)):
            monkeypatch.setattr(retrieval_module, '_CPU_PASS_PAIRS',
                                pass_pairs)
            results = evaluate_retrieval(
                *case, chunk_size=chunk_size, **options)
            assert results.keys() == reference.keys()
            for key, value in reference.items():
                np.testing.assert_array_equal(
                    results[key], value, err_msg=f'seed {seed}: {key}')


@pytest.mark.parametrize('population, successes, sample', [
    (0, 0, 0), (1, 0, 1), (1, 1, 1), (5, 5, 3), (5, 0, 3), (8, 3, 4), (10, 7, 9),
    (50, 20, 30), (3000, 2999, 1500), (5000, 300, 2000), (6000, 1000, 3000),
    (29200, 100, 29199), (75750, 750, 100)
])
def test_hypergeometric_pmf_matches_exact_fractions(population, successes,
                                                    sample):
    num_draws = min(successes, sample) + 3
    pmf = hypergeometric_pmf(
        torch.tensor([population]), torch.tensor([successes]),
        torch.tensor([sample]), num_draws)[0].tolist()
    total = math.comb(population, sample)
    for draws, value in enumerate(pmf):
        failures_drawn = sample - draws
        exact = Fraction(
            math.comb(successes, draws) *
            math.comb(population - successes, failures_drawn), total
        ) if failures_drawn >= 0 else Fraction(0)
        # Relative accuracy wherever the probability is not negligible.
        assert value == pytest.approx(float(exact), rel=1e-13, abs=1e-300)
    assert sum(pmf) == pytest.approx(1, abs=1e-14)


def test_topk_at_or_beyond_database_is_the_whole_database():
    case = random_case(
        7, num_queries=10, num_items=60, nbits=6, multi_hot=False)
    results = evaluate_retrieval(
        *case, map_topk=(None, 60, 1000), tie_break=('index', 'expected'))
    for suffix in ('', '_expected'):
        assert results[f'mAP@60{suffix}'] == pytest.approx(
            results[f'mAP{suffix}'], abs=1e-12)
        assert results[f'mAP@1000{suffix}'] == pytest.approx(
            results[f'mAP{suffix}'], abs=1e-12)


def test_single_metric_functions_match_one_pass():
    case = random_case(
        8, num_queries=15, num_items=120, nbits=6, multi_hot=True)
    results = evaluate_retrieval(
        *case,
        map_topk=(None, 30),
        precision_k=(10, ),
        recall_k=(10, ),
        radius=(2, ),
        tie_break=('index', 'expected'),
        pr_curve=True,
        authors_protocol=True)
    # Exact on a CPU: a query's values depend neither on the chunks (which
    # differ with the metrics asked) nor on the other metrics.
    assert mean_average_precision(*case) == results['mAP']
    assert mean_average_precision(
        *case, topk=30, tie_break='expected') == pytest.approx(
            results['mAP@30_expected'], abs=1e-12)
    assert mean_average_precision(
        *case, authors_protocol=True) == results['mAP_authors']
    assert precision_at_k(*case, k=10) == results['P@10']
    assert recall_at_k(
        *case, k=10, tie_break='expected') == pytest.approx(
            results['R@10_expected'], abs=1e-12)
    assert precision_within_radius(*case, radius=2) == results['P@r2']
    assert recall_within_radius(*case, radius=2) == results['R@r2']
    precision, recall = precision_recall_curve(*case)
    np.testing.assert_array_equal(precision, results['PR_precision'])
    np.testing.assert_array_equal(recall, results['PR_recall'])


def test_torch_codes_are_evaluated_on_their_device():
    case = random_case(
        9, num_queries=5, num_items=30, nbits=6, multi_hot=False)
    tensors = [torch.from_numpy(a) for a in case]
    results = evaluate_retrieval(*tensors, precision_k=(3, ))
    assert isinstance(results['mAP'], float)
    assert isinstance(results['num_queries_without_relevant'], int)
    if torch.cuda.is_available():
        on_gpu = evaluate_retrieval(
            *[t.cuda() for t in tensors], precision_k=(3, ))
        assert on_gpu == pytest.approx(results, abs=1e-12)


# ----------------------------------------------------------------- bad input


def good_arrays():
    return dict(
        query_codes=np.ones((3, 8)),
        database_codes=-np.ones((5, 8)),
        query_labels=np.zeros(3, dtype=np.int64),
        database_labels=np.zeros(5, dtype=np.int64))


@pytest.mark.parametrize('change, words', [
    (dict(database_codes=np.ones((5, 6))),
     ['query_codes', 'database_codes', '(3, 8)', '(5, 6)']),
    (dict(query_labels=np.zeros(4)), ['query_labels', '(4,)', 'query_codes']),
    (dict(database_labels=np.zeros((6, 2))),
     ['database_labels', '(6, 2)', 'database_codes']),
    (dict(query_labels=np.zeros((3, 4)), database_labels=np.zeros(
        (5, 3))), ['query_labels', 'database_labels', '(3, 4)', '(5, 3)']),
    (dict(query_labels=np.full((3, 1), 7), database_labels=np.zeros(
        (5, 1))), ['query_labels', '(3, 1)', 'multi-hot']),
    (dict(query_codes=np.full((3, 8), 0.5)), ['query_codes', '(3, 8)']),
    (dict(database_codes=np.array([[-1, 0, 1, 1, 1, 1, 1, 1]] * 5)),
     ['database_codes', '(5, 8)']),
    (dict(database_codes=np.ones((0, 8))), ['database_codes', '(0, 8)']),
    (dict(query_codes=np.ones(8)), ['query_codes', '(8,)']),
])
def test_bad_input_names_the_argument(change, words):
    arrays = {**good_arrays(), **change}
    with pytest.raises(ValueError) as error:
        evaluate_retrieval(**arrays)
    for word in words:
        assert word in str(error.value)


def test_bad_packed_codes_name_the_argument():
    arrays = good_arrays()
    arrays['query_codes'] = np.zeros((3, 1), dtype=np.uint8)
    arrays['database_codes'] = np.zeros((5, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match=r'query_codes.*\(3, 1\)'):
        evaluate_retrieval(**arrays, nbits=10)


@pytest.mark.parametrize('option', [
    dict(map_topk=(0, )),
    dict(precision_k=(-1, )),
    dict(radius=(-2, )),
    dict(tie_break='random'),
    dict(chunk_size=0)
])
def test_bad_options_are_rejected(option):
    name = next(iter(option))
    with pytest.raises(ValueError, match=name):
        evaluate_retrieval(**good_arrays(), **option)


def test_expected_order_behind_a_long_prefix():
    # H_{N+n} - H_N with N = 5000 loses digits to cancellation; check the
    # closed form against enumeration there. 5000 non-relevant items at
    # distance 0, then a tie of 3 items (2 relevant) at distance 2.
    database = np.concatenate([np.zeros((5000, 2)), np.ones((3, 2))])
    labels = np.concatenate([np.ones(5000), [0, 0, 1]])
    aps = [
        ranked_metrics(np.isin(np.arange(5003), [5000 + a, 5000 + b]), 5003)[0]
        for a, b in itertools.combinations(range(3), 2)
    ]
    results = evaluate_retrieval(
        np.zeros((1, 2)),
        database,
        np.array([0]),
        labels,
        map_topk=(None, 5001),
        tie_break='expected')
    assert results['mAP_expected'] == pytest.approx(np.mean(aps), rel=1e-9)
    aps_top = [
        ranked_metrics(np.isin(np.arange(5003), [5000 + a, 5000 + b]), 5001)[0]
        for a, b in itertools.combinations(range(3), 2)
    ]
    assert results['mAP@5001_expected'] == pytest.approx(
        np.mean(aps_top), rel=1e-9)


def test_tie_orders_agree_without_ties():
    # Item i differs from the query in its first i bits: all distances differ.
    rng = np.random.default_rng(10)
    database = np.tril(np.ones((17, 16)), -1)[rng.permutation(17)]
    labels = rng.integers(0, 2, 17)
    results = evaluate_retrieval(
        np.zeros((1, 16)),
        database,
        np.array([1]),
        labels,
        map_topk=(None, 5),
        precision_k=(5, ),
        tie_break=('index', 'expected'))
    for key in ('mAP', 'mAP@5', 'P@5'):
        assert results[key] == pytest.approx(
            results[f'{key}_expected'], abs=1e-12)
    assert results['mAP'] != results['mAP@5']
