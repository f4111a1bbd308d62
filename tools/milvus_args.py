"""The Milvus command line shared by tools/encode.py and tools/search.py
(docs/milvus.md): the collection's URI, name, index and timeout."""
import argparse

from mmqueryopt.retrieval.milvus_index import (DEFAULT_NLIST, INDEX_TYPES,
                                               MilvusIndex, MilvusIndexError,
                                               check_index_type,
                                               default_collection,
                                               quiet_milvus_logs)

# The flags that mean nothing without a Milvus URI (search adds nprobe).
MILVUS_FLAGS = ('collection', 'index_type', 'nlist', 'nprobe',
                'replace_collection', 'milvus_timeout')
DEFAULT_TIMEOUT = 30.0


def add_milvus_args(parser: argparse.ArgumentParser, uri_flag: str,
                    codes_flag: str) -> None:
    """``uri_flag``, ``--collection``, ``--index-type``, ``--nlist``,
    ``--replace-collection`` and ``--milvus-timeout``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        uri_flag (str): The URI's flag (``'--uri'``, ``'--milvus-uri'``).
        codes_flag (str): The codes file's flag, which names the default
            collection.
    """
    group = parser.add_argument_group(
        'Milvus', 'a collection of the codes (pip install -e ".[milvus]"; '
        'docs/milvus.md)')
    group.add_argument(
        uri_flag, dest='uri', metavar='URI',
        help='Milvus Lite file (FILE.db, one process at a time) or server '
        'URL (http://host:19530)')
    group.add_argument(
        '--collection',
        help=f'collection name (default: the {codes_flag} file name without '
        'extension, other characters than letters, digits and _ as _)')
    group.add_argument(
        '--index-type', choices=INDEX_TYPES,
        help='index of a new collection (default BIN_FLAT, exact; '
        'BIN_IVF_FLAT is approximate and needs a Milvus server)')
    group.add_argument(
        '--nlist', type=int,
        help=f'clusters of a new BIN_IVF_FLAT index (default '
        f'{DEFAULT_NLIST})')
    group.add_argument(
        '--replace-collection', action='store_true',
        help='drop an existing collection of other codes and load anew')
    group.add_argument(
        '--milvus-timeout', type=float,
        help=f'seconds to connect and for each Milvus request (default '
        f'{DEFAULT_TIMEOUT:g})')


def check_milvus_args(args: argparse.Namespace, needs: str) -> None:
    """End the program with one line for Milvus flags given without
    Milvus, or bad numbers; before any work.

    Args:
        args (argparse.Namespace): Parsed arguments.
        needs (str): What the flags need, e.g. ``'--backend milvus'``.
    """
    if args.uri is None:
        given = [f'--{name.replace("_", "-")}' for name in MILVUS_FLAGS
                 if getattr(args, name, None) not in (None, False)]
        if given:
            raise SystemExit(f'error: {", ".join(given)}: Milvus options, '
                             f'which need {needs}')
        return
    if args.milvus_timeout is not None and args.milvus_timeout <= 0:
        raise SystemExit('error: --milvus-timeout must be positive')
    args.nlist = DEFAULT_NLIST if args.nlist is None else args.nlist
    try:
        check_index_type(args.uri, args.index_type, args.nlist)
    except MilvusIndexError as error:
        raise SystemExit(f'error: {error}') from None


def open_milvus(args: argparse.Namespace, codes_path: str) -> MilvusIndex:
    """Connect to the collection the arguments name (logs quietened: an
    error is the tool's one line).

    Raises:
        MilvusIndexError: pymilvus missing, a bad URI or name, Milvus
            unreachable within the timeout.
    """
    quiet_milvus_logs()
    return MilvusIndex(args.uri, args.collection
                       or default_collection(codes_path),
                       timeout=args.milvus_timeout or DEFAULT_TIMEOUT)
