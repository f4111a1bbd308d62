"""Time exact top-k Hamming search: BinaryIndex against the alternatives.

Methods (all single-threaded, exact; random codes):

* ``BinaryIndex``: :class:`mmqueryopt.retrieval.BinaryIndex`, XOR and
  ``np.bitwise_count`` on one word per code, then the threshold distance by
  binary search over ``0..nbits`` (counting passes) and the items below and
  at it collected in index order.
* ``numpy histogram``: the same distances; the threshold from a full
  ``np.bincount`` histogram (a counting sort).
* ``numpy argpartition``: the same distances; ``np.argpartition`` on the key
  ``distance * N + index``, then a sort of the ``k`` kept keys.
* ``faiss IndexBinaryFlat``: faiss-cpu, when importable (not a dependency of
  mmqueryopt; ``pip install faiss-cpu`` to compare). Its codes are whole
  bytes; the zero padding bits of ``np.packbits`` rows do not change a
  distance.

Each (method, size) runs in its own process, so ``peak RSS`` is that of the
method alone: the growth of the peak resident memory over the process's
memory after imports and random codes. ``same ranking`` says whether every
query's top ``k`` (ties included) equals BinaryIndex's, i.e. the (distance,
gallery index) order of the metric.

Example::

    python benchmarks/bench_search.py
    python benchmarks/bench_search.py --sizes 1000000x48 --queries 1000
"""
import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

import numpy as np

METHODS = ('BinaryIndex', 'numpy histogram', 'numpy argpartition',
           'faiss IndexBinaryFlat')
DEFAULT_SIZES = ('1000000x48', '1000000x12', '10000000x48')


def random_packed(num, nbits, seed):
    """``(num, ceil(nbits / 8))`` random ``np.packbits`` rows, padding 0."""
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, (num, -(-nbits // 8)), np.uint8)
    if nbits % 8:
        packed[:, -1] &= np.uint8(0xFF << (8 - nbits % 8) & 0xFF)
    return packed


def as_words(packed):
    """One uint64 word per row (rows of at most 8 bytes), zero-padded."""
    padded = np.zeros((len(packed), 8), np.uint8)
    padded[:, :packed.shape[1]] = packed
    return padded.view(np.uint64)[:, 0]


def numpy_search(gallery, queries, nbits, k, method):
    """Top ``k`` by (distance, index) with a histogram or argpartition."""
    gallery, queries = as_words(gallery), as_words(queries)
    scratch = np.empty(len(gallery), np.uint64)
    distances = np.empty(len(gallery), np.uint8)
    positions = np.arange(len(gallery), dtype=np.uint64)
    result = np.empty((len(queries), k), np.int64)
    for row, query in enumerate(queries):
        np.bitwise_xor(gallery, query, out=scratch)
        np.bitwise_count(scratch, out=distances)
        if method == 'numpy histogram':
            counts = np.cumsum(np.bincount(distances, minlength=nbits + 1))
            threshold = int(np.searchsorted(counts, k))
            nearer = np.flatnonzero(distances < threshold)
            nearer = nearer[np.argsort(distances[nearer], kind='stable')]
            at = np.flatnonzero(distances == threshold)[:k - nearer.size]
            result[row] = np.concatenate([nearer, at])
        else:
            keys = distances * np.uint64(len(gallery)) + positions
            kept = np.argpartition(keys, k - 1)[:k]
            result[row] = kept[np.argsort(keys[kept])]
    return result


def run_one(method, num_items, nbits, num_queries, k):
    """Time one method on one size; return its row as a dict."""
    gallery = random_packed(num_items, nbits, seed=0)
    queries = random_packed(num_queries, nbits, seed=1)
    # Imports first: neither the baseline memory nor the build time should
    # count them.
    if method == 'BinaryIndex':
        from mmqueryopt.retrieval import BinaryIndex
    elif method == 'faiss IndexBinaryFlat':
        try:
            import faiss
        except ImportError:
            return None
        faiss.omp_set_num_threads(1)
    baseline = _rss_mib()
    start = time.perf_counter()
    if method == 'BinaryIndex':
        index = BinaryIndex.from_codes(gallery, nbits=nbits)
        index_bytes = index.nbytes
        search = lambda: index.search(queries, k, nbits=nbits)[0]  # noqa
    elif method == 'faiss IndexBinaryFlat':
        index = faiss.IndexBinaryFlat(gallery.shape[1] * 8)
        index.add(gallery)
        index_bytes = gallery.nbytes
        search = lambda: index.search(queries, k)[1]  # noqa
    else:
        index_bytes = len(gallery) * 8
        search = lambda: numpy_search(  # noqa
            gallery, queries, nbits, k, method)
    build = time.perf_counter() - start
    start = time.perf_counter()
    indices = search()
    seconds = time.perf_counter() - start
    return dict(method=method,
                nbits=nbits,
                items=num_items,
                queries=num_queries,
                k=k,
                seconds=seconds,
                build=build,
                index_mib=index_bytes / 2**20,
                peak_mib=_peak_rss_mib() - baseline,
                digest=hashlib.sha256(indices.astype(
                    np.int64).tobytes()).hexdigest())


def _rss_mib():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes',
                        nargs='+',
                        default=DEFAULT_SIZES,
                        help='ITEMSxBITS gallery sizes')
    parser.add_argument('--queries', type=int, default=100)
    parser.add_argument('--topk', type=int, default=100)
    parser.add_argument('--methods',
                        nargs='+',
                        default=METHODS,
                        choices=METHODS)
    parser.add_argument('--one', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, size = args.one.split('@')
        num_items, nbits = map(int, size.split('x'))
        print(
            json.dumps(
                run_one(method, num_items, nbits, args.queries, args.topk)))
        return
    print('| method | bits | items | queries | top-k | search s | build s | '
          'index MiB | peak RSS MiB | same ranking |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for size in args.sizes:
        reference = None
        for method in args.methods:
            # A fresh process per method: its peak RSS is its own.
            output = subprocess.run([
                sys.executable, __file__, '--one', f'{method}@{size}',
                '--queries',
                str(args.queries), '--topk',
                str(args.topk)
            ],
                                    check=True,
                                    capture_output=True,
                                    text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            if row is None:
                print(f'| {method} | not installed |')
                continue
            reference = reference or row['digest']
            print(
                f"| {method} | {row['nbits']} | {row['items']:,} | "
                f"{row['queries']} | {row['k']} | {row['seconds']:.3f} | "
                f"{row['build']:.2f} | {row['index_mib']:.1f} | "
                f"{row['peak_mib']:.0f} | "
                f"{'yes' if row['digest'] == reference else 'no'} |",
                flush=True)


if __name__ == '__main__':
    main()
