"""Encode images into a codes file for search.

``python tools/encode.py CONFIG CHECKPOINT --out codes.npz`` encodes the
database (the config's training split read with the test transforms);
``--split query`` the test split; ``--images DIR`` every image under a folder
(recursively). The file holds packed codes, image paths, labels when the
dataset has them, and the meta that ``tools/search.py`` checks against its
model (method, code length, the checkpoint's sha256, the config's name).

Runs on one device (``--device``, default CUDA when available) or on
several under the distributed launcher, each process encoding every
``world_size``-th image; rank 0 gathers and writes the same file::

    torchrun --nproc_per_node 8 tools/encode.py CONFIG CKPT --out codes.npz \
        --launcher pytorch

``--milvus-uri FILE.db|http://host:19530 [--collection NAME]`` also loads
the codes into a Milvus collection for ``tools/search.py --backend milvus``
(docs/milvus.md); an existing collection is refused before encoding unless
``--replace-collection``.
"""
# First, before torch loads OpenMP: its wait policy (docs/speed.md).
import openmp_env  # noqa: F401  # isort: skip
import argparse
import sys
from typing import List, Optional

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Subset

import mmqueryopt  # noqa: F401  (registers every module)
from mmqueryopt.engine.cli import (USER_ERRORS, add_encoder_args,
                                   add_loader_args,
                                   close_dist, join_launcher, read_config,
                                   user_error_line, user_error_message)
from mmqueryopt.retrieval import save_codes
from mmqueryopt.retrieval.encoder import (IMAGE_EXTENSIONS, ImageListDataset,
                                          build_encoder, encode, list_images,
                                          model_meta, to_codes)
from mmqueryopt.retrieval.milvus_index import MilvusIndexError
from milvus_args import add_milvus_args, check_milvus_args, open_milvus


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Encode a dataset split or a folder of images into a '
        'codes file (.npz) for tools/search.py')
    add_encoder_args(
        parser, 'checkpoint file (loaded with weights_only=True: tensors '
        'and plain data only)')
    parser.add_argument('--out', required=True, help='codes file to write')
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        '--split',
        choices=['database', 'query'],
        default='database',
        help="'database': the config's training split, read with the test "
        "transforms; 'query': its test split (default: database)")
    source.add_argument(
        '--images',
        metavar='DIR',
        help=f'encode every image under DIR, recursively '
        f'({", ".join(IMAGE_EXTENSIONS)})')
    add_loader_args(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher; each process encodes a strided share and rank '
        '0 writes --out (pytorch: torchrun; CPUs use gloo)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_milvus_args(parser, '--milvus-uri', '--out')
    args = parser.parse_args(argv)
    check_milvus_args(args, '--milvus-uri')
    return args


def open_collection(args, meta: dict):
    """The Milvus collection to load (rank 0, before encoding): an
    existing one is refused unless ``--replace-collection``."""
    milvus = open_milvus(args, args.out)
    if milvus.exists and not args.replace_collection:
        milvus.check_dim(meta['nbits'], 'the codes of this model')
        raise MilvusIndexError(
            f'collection {milvus.name!r} at {args.uri} exists ({len(milvus)} '
            f'{milvus.nbits}-bit codes of {milvus.meta.get("method")}); pass '
            f'--replace-collection to replace it, or another --collection')
    return milvus


def build_dataloader(cfg, args):
    """The dataloader of ``--split`` or ``--images``, in a fixed order."""
    loader = cfg.test_dataloader.copy()
    batch_size = args.batch_size or loader.get('batch_size', 32)
    num_workers = (args.num_workers if args.num_workers is not None else
                   loader.get('num_workers', 0))
    if args.images is not None:
        dataset = ImageListDataset(
            list_images(args.images), cfg.test_dataloader.dataset.pipeline)
        return DataLoader(dataset, batch_size=batch_size, shuffle=False,
                          num_workers=num_workers,
                          collate_fn=pseudo_collate)
    if args.split == 'database':
        # As tools/test.py --database encoded: the training images, read
        # like the queries (no random crops), so codes are reproducible.
        loader.dataset = cfg.train_dataloader.dataset.copy()
        loader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    loader.update(batch_size=batch_size, num_workers=num_workers,
                  persistent_workers=num_workers > 0,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    return Runner.build_dataloader(loader)


def shard(dataloader, rank: int, world_size: int) -> DataLoader:
    """The same loading for images ``rank, rank + world_size, ...``."""
    return DataLoader(
        Subset(dataloader.dataset, range(rank, len(dataloader.dataset),
                                         world_size)),
        batch_size=dataloader.batch_size,
        shuffle=False,
        num_workers=dataloader.num_workers,
        collate_fn=pseudo_collate)


def merge(parts: list, world_size: int) -> tuple:
    """Every rank's strided ``(codes, paths, labels)``, in dataset order."""
    import numpy as np
    order = [(i % world_size, i // world_size)
             for i in range(sum(len(part[1]) for part in parts))]
    codes = np.stack([parts[r][0][j] for r, j in order])
    paths = [parts[r][1][j] for r, j in order]
    labelled = all(part[2] is not None for part in parts)
    labels = (np.asarray([parts[r][2][j] for r, j in order])
              if labelled else None)
    return codes, paths, labels


def main(argv: Optional[List[str]] = None) -> None:
    """Run the tool: encode, then write ``--out`` (only on success)."""
    args = parse_args(argv)
    device = join_launcher(
        args.launcher, 'torchrun --nproc_per_node N tools/encode.py ... '
        '--launcher pytorch')
    if device is not None:
        args.device = device
    rank, world_size = get_dist_info()
    error = result = milvus = None
    try:
        cfg = read_config(args.config, args.cfg_options, args.allow_new_keys)
        # The checkpoint first: a bad one fails before any data work.
        model = build_encoder(
            cfg, args.checkpoint, args.device or
            ('cuda' if torch.cuda.is_available() else 'cpu'))
        meta = model_meta(model, args.checkpoint, args.config)
        if args.uri is not None and rank == 0:
            milvus = open_collection(args, meta)
        dataloader = build_dataloader(cfg, args)
        if world_size > 1:
            dataloader = shard(dataloader, rank, world_size)
        result = encode(
            model, dataloader, progress=not args.no_progress and rank == 0)
    except (*USER_ERRORS, NotADirectoryError, ValueError, TypeError) as exc:
        # MilvusIndexError is a ValueError.
        # One line naming the file or key at fault (building the dataset
        # checked its files and images); --out is written only at the end,
        # so nothing is left there.
        error = user_error_line(exc)
        if error is None and isinstance(exc, TypeError):
            raise
        error = error or f'error: {user_error_message(exc)}'
    if world_size > 1:
        # Errors travel with the results: a rank that stopped alone would
        # leave the others waiting in the gather.
        parts = all_gather_object((error, result))
        error = next((e for e, _ in parts if e is not None), None)
        if error is None:
            result = merge([r for _, r in parts], world_size)
    if error is not None:
        raise SystemExit(error)
    codes, paths, labels = result
    if rank == 0:
        gallery = to_codes(codes, paths, labels, meta)
        save_codes(args.out, gallery)
        print(f'{len(paths)} codes of {meta["nbits"]} bits'
              f'{" with labels" if labels is not None else ""} -> '
              f'{args.out}', file=sys.stderr)
        if milvus is not None:
            load_collection(milvus, gallery, args)
    close_dist()


def load_collection(milvus, gallery, args) -> None:
    """Load the written codes into the collection (dropped again if the
    load fails: never half-loaded)."""
    with milvus:
        try:
            milvus.load_codes(gallery, args.index_type, args.nlist,
                              repr(args.out), replace=True)
        except MilvusIndexError as error:
            raise SystemExit(f'error: {error} ({args.out} was written)') \
                from None
    print(f'{len(gallery.packed)} codes -> collection {milvus.name!r} at '
          f'{args.uri}', file=sys.stderr)


if __name__ == '__main__':
    main()
