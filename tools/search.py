"""Search a codes file with query images.

``python tools/search.py CONFIG CHECKPOINT --index codes.npz --image Q.jpg
[--image ...] --topk 20`` encodes the queries with the model, refuses an
index encoded by another model (method, code length or checkpoint), and
prints rank, Hamming distance and path of each query's nearest images, ties
in index order. ``--out-json`` writes the same as JSON; ``--show-dir`` a PNG
grid per query (green/red borders when the query is itself in the index with
a label, so that right and wrong results are known).

``--backend milvus --uri FILE.db|http://host:19530 [--collection NAME]``
searches a Milvus collection instead of the in-process index, loading the
codes file into it when it does not hold it yet; the output is the same
(docs/milvus.md).
"""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.datasets import BrokenImageError
from mmqueryopt.engine.cli import add_encoder_args, encoder_from_args
from mmqueryopt.fileio import atomic_write
from mmqueryopt.retrieval import (BinaryIndex, CodesFileError,
                                  check_same_model, load_codes)
from mmqueryopt.retrieval.encoder import ImageListDataset, encode, model_meta
from mmqueryopt.retrieval.grid import save_grid
from mmqueryopt.retrieval.milvus_index import MAX_TOPK
from milvus_args import add_milvus_args, check_milvus_args, open_milvus


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Find the nearest images of query images in a codes '
        'file written by tools/encode.py')
    add_encoder_args(
        parser, 'checkpoint that encoded the index (loaded with '
        'weights_only=True)')
    parser.add_argument(
        '--index', required=True, help='codes file (tools/encode.py --out)')
    parser.add_argument(
        '--image',
        action='append',
        required=True,
        help='query image; repeat for more queries')
    parser.add_argument(
        '--topk',
        type=int,
        default=20,
        help='results per query (clamped to the index size with a warning)')
    parser.add_argument('--out-json', help='write the results as JSON')
    parser.add_argument(
        '--show-dir', help='write a PNG grid per query into this folder')
    parser.add_argument(
        '--thumb-size', type=int, default=128, help='grid thumbnail side (px)')
    parser.add_argument(
        '--ncols', type=int, default=6, help='grid cells per row')
    parser.add_argument(
        '--backend',
        choices=['index', 'milvus'],
        default='index',
        help="'index': the codes file searched in this process (exact, "
        "ties in index order); 'milvus': a Milvus collection of it "
        '(--uri; docs/milvus.md)')
    add_milvus_args(parser, '--uri', '--index')
    parser.add_argument(
        '--nprobe', type=int,
        help='clusters a BIN_IVF_FLAT collection searches (= --nlist: '
        "exact; default Milvus's, 8)")
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk must be at least 1')
    if args.backend == 'milvus':
        if args.uri is None:
            raise SystemExit('error: --backend milvus needs --uri FILE.db '
                             'or --uri http://host:19530')
        if args.topk > MAX_TOPK:
            raise SystemExit(
                f'error: --topk {args.topk} is over Milvus\'s limit of '
                f'{MAX_TOPK} results per query; use --backend index for '
                f'more')
        if args.nprobe is not None and args.nprobe < 1:
            raise SystemExit('error: --nprobe must be at least 1')
    elif args.uri is not None:
        raise SystemExit('error: --uri only applies with --backend milvus')
    check_milvus_args(args, '--backend milvus --uri')
    return args


def search(args: argparse.Namespace) -> dict:
    """Encode the queries, check the model, search; the JSON result."""
    milvus = None
    if args.backend == 'milvus':
        index = load_codes(args.index)
        # Before the model is built: an unreachable server or a collection
        # of other codes is refused first.
        milvus = open_milvus(args, args.index)
        if milvus.exists and not args.replace_collection:
            milvus.check_codes(index, repr(args.index), args.index_type)
    else:
        index = BinaryIndex.load(args.index)
    cfg, model = encoder_from_args(args)
    # Before encoding anything: codes of another model mean nothing here.
    check_same_model(index.meta, model_meta(model, args.checkpoint),
                     repr(args.index))
    for path in args.image:
        if not osp.isfile(path):
            raise FileNotFoundError(f'query image not found: {path}')
    # One process: a decoding error then surfaces as itself, naming the file.
    dataset = ImageListDataset([osp.abspath(p) for p in args.image],
                               cfg.test_dataloader.dataset.pipeline)
    loader = DataLoader(dataset, batch_size=16, collate_fn=pseudo_collate)
    codes, query_paths, _ = encode(model, loader, progress=False)
    if milvus is None:
        indices, distances = index.search(codes, args.topk)
    else:
        with milvus:
            if milvus.load_codes(index, args.index_type, args.nlist,
                                 repr(args.index), args.replace_collection):
                print(f'{len(index.packed)} codes of {args.index} -> '
                      f'collection {milvus.name!r} at {args.uri}',
                      file=sys.stderr)
            indices, distances = milvus.search(codes, args.topk,
                                               nprobe=args.nprobe)
    gallery_paths = [str(p) for p in index.paths]
    labels = index.labels
    row_of = {path: i for i, path in enumerate(gallery_paths)}
    results = []
    for q, query in enumerate(query_paths):
        # A query's label is known only when it is itself in the index.
        row = row_of.get(query)
        query_label = (int(labels[row]) if row is not None
                       and labels is not None and labels.ndim == 1 else None)
        neighbours = []
        for rank, (i, dist) in enumerate(zip(indices[q], distances[q]), 1):
            item = dict(rank=rank, distance=int(dist), index=int(i),
                        path=gallery_paths[i])
            if labels is not None and labels.ndim == 1:
                item['label'] = int(labels[i])
            neighbours.append(item)
        results.append(dict(query=args.image[q], path=query,
                            label=query_label, results=neighbours))
    return dict(index=args.index, nbits=index.nbits,
                topk=int(indices.shape[1]), queries=results)


def show(result: dict, show_dir: str, thumb_size: int, ncols: int) -> None:
    """A PNG grid per query: ``<n>_<query name>.png`` (n keeps two queries
    of one name apart)."""
    os.makedirs(show_dir, exist_ok=True)
    for n, query in enumerate(result['queries']):
        name = osp.splitext(osp.basename(query['path']))[0]
        items = query['results']
        save_grid(
            osp.join(show_dir, f'{n:03d}_{name}.png'), query['path'],
            [item['path'] for item in items],
            [item['distance'] for item in items], query['label'],
            [item.get('label') for item in items]
            if query['label'] is not None else None, thumb_size, ncols)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the tool; returns the result (what ``--out-json`` holds)."""
    args = parse_args(argv)
    try:
        result = search(args)
    except (FileNotFoundError, BrokenImageError, CodesFileError,
            ValueError) as error:
        # Before any output is written: a bad query, index or checkpoint
        # leaves no partial JSON or grids behind.
        raise SystemExit(f'error: {error}') from None
    for query in result['queries']:
        label = '' if query['label'] is None else f' (label {query["label"]})'
        print(f'query {query["query"]}{label}')
        for item in query['results']:
            print(f'  {item["rank"]:4d}  {item["distance"]:3d}  '
                  f'{item["path"]}')
    if args.out_json:
        atomic_write(args.out_json,
                     json.dumps(result, indent=2).encode('utf-8'))
    if args.show_dir:
        try:
            show(result, args.show_dir, args.thumb_size, args.ncols)
        except OSError as error:
            # E.g. a gallery image moved or deleted since it was encoded.
            raise SystemExit(f'error: drawing the grids: {error}') from None
    return result


if __name__ == '__main__':
    main()
