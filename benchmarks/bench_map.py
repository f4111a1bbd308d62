"""Time exact Hamming-ranking evaluation against the authors' per-query loop.

Two baselines, each timed on the first ``--loop-queries`` queries and
extrapolated linearly to all of them:

* ``authors' CalcTopMap``: their routine as published (numpy, CPU): per query
  a one-hot label dot product for relevance, one inner-product distance, one
  argsort and one cumulative precision.
* ``lean loop``: the same loop with relevance by class-id comparison, on the
  benchmarked device (numpy on CPU, torch on CUDA); a stricter baseline.

Example::

    python benchmarks/bench_map.py --sizes cub
    python benchmarks/bench_map.py --sizes cub vegfru --devices cpu
"""
import argparse
import os
import threading
import time

import numpy as np
import torch

from mmqueryopt.evaluation.functional import evaluate_retrieval

# name: (queries, database, classes) of the fine-grained benchmarks.
SIZES = {
    'cub': (5794, 5994, 200),
    'vegfru': (116931, 29200, 292),
}
_SETTLE_SECONDS = 0.5
ALL_METRICS = dict(
    map_topk=(None, 100),
    precision_k=(100, ),
    recall_k=(100, ),
    radius=(2, ),
    tie_break=('index', 'expected'),
    pr_curve=True)


def random_case(size, nbits, device, seed=0):
    num_queries, num_items, num_classes = SIZES[size]
    generator = torch.Generator().manual_seed(seed)

    def codes(n):
        bits = torch.randint(0, 2, (n, nbits), generator=generator)
        return (bits.float() * 2 - 1).to(device)

    def labels(n):
        return torch.randint(
            0, num_classes, (n, ), generator=generator).to(device)

    return codes(num_queries), codes(num_items), labels(num_queries), \
        labels(num_items)


def their_calc_top_map(query, database, query_labels, database_labels):
    """Sum of per-query AP of the authors' ``CalcTopMap`` (topk=-1)."""
    qB, rB = query.cpu().numpy(), database.cpu().numpy()
    num_classes = int(max(query_labels.max(), database_labels.max())) + 1
    one_hot = np.eye(num_classes, dtype=np.float32)
    queryL = one_hot[query_labels.cpu().numpy()]
    retrievalL = one_hot[database_labels.cpu().numpy()]
    topk = -1
    topkmap = 0
    for iter in range(len(qB)):
        gnd = (np.dot(queryL[iter, :], retrievalL.transpose())
               > 0).astype(np.float32)
        hamm = 0.5 * (rB.shape[1] - np.dot(qB[iter, :], rB.transpose()))
        ind = np.argsort(hamm)
        gnd = gnd[ind]
        tgnd = gnd[0:topk]
        tsum = np.sum(tgnd).astype(int)
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap = topkmap + np.mean(count / (tindex))
    return topkmap


def lean_loop(query, database, query_labels, database_labels):
    """Sum of per-query AP, one distance, argsort and cumsum per query."""
    nbits = database.shape[1]
    if query.is_cuda:
        total = query.new_zeros((), dtype=torch.float64)
        for i in range(len(query)):
            hamm = 0.5 * (nbits - database @ query[i])
            gnd = (database_labels == query_labels[i])[torch.argsort(hamm)]
            rank = torch.arange(1, len(gnd) + 1, device=gnd.device)
            precision = gnd.cumsum(0) / rank
            hits = gnd.sum()
            total += torch.where(hits > 0,
                                 (precision * gnd).sum() / hits.clamp(min=1),
                                 0.)
        return total.item()
    query, database = query.numpy(), database.numpy()
    query_labels, database_labels = query_labels.numpy(), \
        database_labels.numpy()
    total = 0.
    for i in range(len(query)):
        hamm = 0.5 * (nbits - np.dot(query[i], database.T))
        gnd = (database_labels == query_labels[i])[np.argsort(hamm)]
        tsum = gnd.sum()
        if tsum == 0:
            continue
        total += np.mean(np.arange(1, tsum + 1) / (np.flatnonzero(gnd) + 1))
    return total


class PeakMemory:
    """Peak memory above the starting point while the block runs, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: resident set size
    sampled every millisecond from ``/proc/self/statm`` (torch's allocations
    are invisible to tracemalloc).
    """

    def __init__(self, device):
        self.device = device
        self.peak_mib = float('nan')

    @staticmethod
    def _rss():
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _sample(self):
        while not self._done.is_set():
            self._peak = max(self._peak, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        if self.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        elif os.path.exists('/proc/self/statm'):
            self._start = self._peak = self._rss()
            self._done = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device == 'cuda':
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        elif os.path.exists('/proc/self/statm'):
            self._done.set()
            self._thread.join()
            peak = max(self._peak, self._rss())
        else:
            return
        self.peak_mib = (peak - self._start) / 2**20


def run_once(device, fn):
    """Result, wall seconds and process CPU seconds (all threads, which
    shows the cost when other processes compete for the cores)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def bench(size, device, nbits, loop_queries, repeats):
    query, database, query_labels, database_labels = random_case(
        size, nbits, device)
    num_queries, subset = len(query), min(loop_queries, len(query))
    # Warm up (CUDA kernels, allocators, thread pools) outside the timings.
    evaluate_retrieval(query[:64], database, query_labels[:64],
                       database_labels, **ALL_METRICS)
    # name, device, queries timed, fn, value of its result per query
    methods = [
        (f"{name} ({loop_device})", loop_device, subset,
         lambda loop=loop: loop(query[:subset], database,
                                query_labels[:subset], database_labels),
         lambda total: total / subset)
        for name, loop, loop_device in (
            ("authors' CalcTopMap", their_calc_top_map, 'cpu'),
            ('lean loop', lean_loop, device))
    ] + [(name, device, num_queries,
          lambda options=options: evaluate_retrieval(
              query, database, query_labels, database_labels, **options),
          lambda results: results['mAP'])
         for name, options in (('ours: mAP (index ties)', {}),
                               ('ours: all metrics*', ALL_METRICS))]
    # Round robin, so that a slow spell of the machine hits every method;
    # the pause lets numpy's BLAS threads stop spinning on the cores.
    best = [(float('inf'), float('inf'))] * len(methods)
    values = [None] * len(methods)
    for _ in range(repeats):
        for i, (_, method_device, _, fn, value) in enumerate(methods):
            time.sleep(_SETTLE_SECONDS)
            result, seconds, cpu_seconds = run_once(method_device, fn)
            best[i] = min(best[i], (seconds, cpu_seconds))
            values[i] = value(result)
    rows = []
    for (name, method_device, timed_queries, fn, _), (seconds, cpu_seconds), \
            value in zip(methods, best, values):
        # Its own run: the memory sampler's thread would slow a timed one.
        with PeakMemory(method_device) as memory:
            fn()
        scale = num_queries / timed_queries
        rows.append((name, timed_queries, seconds * scale, cpu_seconds * scale,
                     memory.peak_mib, value))
    for name, timed_queries, seconds, cpu_seconds, peak, value in rows:
        queries = f'{timed_queries}' + (' (extrapolated)'
                                        if timed_queries < num_queries else '')
        print(f'| {size} {num_queries}x{len(database)} | {device} | {name} | '
              f'{queries} | {seconds:.2f} | {cpu_seconds:.2f} | {peak:.0f} | '
              f'{rows[0][2] / seconds:.1f}x | {rows[1][2] / seconds:.1f}x | '
              f'{value:.5f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes', nargs='+', choices=sorted(SIZES), default=['cub', 'vegfru'])
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    parser.add_argument(
        '--devices', nargs='+', choices=['cpu', 'cuda'], default=devices)
    parser.add_argument('--nbits', type=int, default=48)
    parser.add_argument(
        '--loop-queries',
        type=int,
        default=300,
        help='queries the authors\' loop is timed on')
    parser.add_argument(
        '--repeats',
        type=int,
        default=3,
        help='rounds of timed runs over all methods; each method\'s '
        'fastest is reported')
    args = parser.parse_args()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU '
          f'threads' + (f', {torch.cuda.get_device_name()}' if 'cuda' in
                        args.devices else ''))
    print('| size | device | method | queries timed | wall s | CPU s | '
          "peak MiB | speedup vs authors' | vs lean loop | mAP |")
    print('|---|---|---|---|---|---|---|---|---|---|')
    for size in args.sizes:
        for device in args.devices:
            bench(size, device, args.nbits, args.loop_queries, args.repeats)
    print('* mAP and mAP@100 under both tie orders, P@100, R@100, P@r2, '
          'R@r2 and the PR curve, in one pass. Times: fastest of '
          f'{args.repeats} rounds over all methods; speedups are of wall '
          'time.')
    print("mAP column: a loop's value is over the timed queries only, breaks "
          'ties in argsort order and (authors\') drops the last item.')


if __name__ == '__main__':
    main()
