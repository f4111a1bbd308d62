"""Hamming search over a Milvus collection of binary codes.

The backend a gallery moves to when one machine no longer holds it:
:class:`MilvusIndex` keeps a codes file's codes in a Milvus collection (a
Milvus Lite ``.db`` file, or a server such as ``http://host:19530``) and
answers :meth:`~MilvusIndex.search` with the contract of
:class:`~mmqueryopt.retrieval.BinaryIndex`: ``(Q, k)`` int64 row indices of
the codes file and ``(Q, k)`` int64 Hamming distances, ranked by (distance,
index).

The collection: an ``INT64`` primary key ``id`` (the row in the codes file)
and a ``BINARY_VECTOR`` ``code`` of ``8 * ceil(nbits / 8)`` bits: the
``np.packbits`` row as it is, whose padding bits are 0 in gallery and
queries alike, so distances do not change. Index ``BIN_FLAT`` (exact) or
``BIN_IVF_FLAT`` (approximate; servers only, Milvus Lite has BIN_FLAT
alone), metric ``HAMMING``. The collection's description holds the model
meta of its codes (method, code length, checkpoint), their number and a
digest of codes and paths, so that a search with another model is refused
and a codes file is loaded once.

Where Milvus differs from the in-process index (docs/milvus.md): top-k is
at most 16,384; ties come back in insertion order (the rows are inserted in
index order, and each result row is re-sorted by (distance, id) besides);
``BIN_IVF_FLAT`` may miss neighbours unless ``nprobe == nlist``.
"""
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import os.path as osp
import re
import uuid
import warnings
from typing import Iterator, Optional, Tuple

import numpy as np

from mmqueryopt.evaluation.functional.codes import ArrayLike, pack_codes
from mmqueryopt.fileio import MODEL_KEYS, Codes

# Milvus's limit on top-k (and on queries per request).
MAX_TOPK = 16384
INDEX_TYPES = ('BIN_FLAT', 'BIN_IVF_FLAT')
DEFAULT_NLIST = 1024
INSTALL_HINT = 'pip install -e ".[milvus]"'
# Marks a collection written by this module (its description's JSON).
_FORMAT = 'mmqueryopt-codes/1'
_ID, _CODE = 'id', 'code'
# Rows per insert request: a few MB, well under gRPC's 64 MB message cap.
_INSERT_ROWS = 50_000
_QUERY_ROWS = 1024
# What milvus-lite's server accepts as a file name (milvus_lite/server.py).
_LITE_NAME = re.compile(r'^[A-Za-z0-9.\-_]{1,36}$')
_COLLECTION_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,254}$')
_URL_SCHEMES = ('http://', 'https://', 'tcp://', 'grpc://', 'unix:')


class MilvusIndexError(ValueError):
    """A Milvus problem a user fixes (URI, collection, versions), in one
    line."""


def padded_dim(nbits: int) -> int:
    """The ``BINARY_VECTOR`` dimension of ``nbits``-bit codes: the next
    multiple of 8 (Milvus refuses any other)."""
    return 8 * -(-nbits // 8)


def default_collection(codes_path: str) -> str:
    """The collection name of a codes file: its file name without the
    extension, each character Milvus does not allow replaced by ``_``.

    Args:
        codes_path (str): E.g. ``'work_dirs/x/database.npz'``.

    Returns:
        str: E.g. ``'database'``.
    """
    stem = osp.splitext(osp.basename(codes_path))[0]
    name = re.sub(r'[^A-Za-z0-9_]', '_', stem)[:255] or 'codes'
    return name if re.match(r'[A-Za-z_]', name) else f'_{name[:254]}'


def codes_digest(codes: Codes) -> str:
    """Hex SHA-256 of a set of codes: code length, packed rows and paths
    (the results name the images, so the same codes of other images are
    another gallery)."""
    digest = hashlib.sha256(f'{codes.nbits}\n'.encode())
    digest.update(np.ascontiguousarray(codes.packed, np.uint8).tobytes())
    if codes.paths is not None:
        digest.update('\0'.join(str(p) for p in codes.paths).encode())
    return digest.hexdigest()


def quiet_milvus_logs() -> None:
    """Silence what pymilvus and the Milvus Lite server log on an error
    that :class:`MilvusIndex` raises as one line anyway (tools call it, so
    that a user error prints that line only).

    Call it before the first Milvus Lite file is opened: the server reads
    its log level from the environment when it starts.
    """
    os.environ.setdefault('GLOG_minloglevel', '3')  # the server: FATAL only
    for name in ('pymilvus', 'pymilvus.milvus_client'):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # milvus_lite logs its failures on the root logger.
    root = logging.getLogger()
    if _not_milvus_lite not in root.filters:
        root.addFilter(_not_milvus_lite)


def _not_milvus_lite(record: logging.LogRecord) -> bool:
    return 'milvus_lite' not in record.pathname


def check_index_type(uri: str, index_type: Optional[str],
                     nlist: int = DEFAULT_NLIST) -> None:
    """Refuse an index Milvus (or Milvus Lite) would refuse, before any
    work.

    Args:
        uri (str): Where the collection lives.
        index_type (str, optional): One of :data:`INDEX_TYPES` or None.
        nlist (int): Clusters of ``BIN_IVF_FLAT``, in ``[1, 65536]``.
    """
    if index_type is not None and index_type not in INDEX_TYPES:
        raise MilvusIndexError(f'index type {index_type!r}: expected one '
                               f'of {", ".join(INDEX_TYPES)}')
    if index_type == 'BIN_IVF_FLAT' and _is_lite(uri):
        raise MilvusIndexError(
            f'Milvus Lite ({uri}) has BIN_FLAT only; BIN_IVF_FLAT needs a '
            f'Milvus server (http://host:19530)')
    if not 1 <= nlist <= 65536:
        raise MilvusIndexError(f'nlist must be in [1, 65536]; got {nlist}')


def _is_lite(uri: str) -> bool:
    return not uri.startswith(_URL_SCHEMES)


def _import_pymilvus(uri: str):
    """pymilvus (and, for a ``.db`` URI, a milvus-lite with binary
    vectors), or one line saying what to install."""
    try:
        import pymilvus
    except ImportError:
        raise MilvusIndexError(
            f'the Milvus backend needs pymilvus: {INSTALL_HINT}') from None
    if _is_lite(uri):
        try:
            version = importlib.metadata.version('milvus-lite')
        except importlib.metadata.PackageNotFoundError:
            raise MilvusIndexError(
                f'a local Milvus file ({uri}) needs milvus-lite: '
                f'{INSTALL_HINT}') from None
        if int(version.split('.')[0]) >= 3:
            raise MilvusIndexError(
                f'milvus-lite {version} has no binary vectors (3.x dropped '
                f'them); install 2.5.1: {INSTALL_HINT}')
    return pymilvus


def _check_uri(uri: str) -> None:
    if not _is_lite(uri):
        return
    if not uri.endswith('.db'):
        raise MilvusIndexError(
            f'Milvus URI {uri!r}: expected a Milvus Lite file ending in .db '
            f'or a server URL such as http://localhost:19530')
    name, folder = osp.basename(uri), osp.dirname(osp.abspath(uri))
    if not _LITE_NAME.match(name):
        raise MilvusIndexError(
            f'Milvus Lite file {uri!r}: its name must be at most 36 '
            f'letters, digits, ".", "-" or "_"')
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'Milvus Lite file {uri!r}: folder {folder} does not exist')


class MilvusIndex:
    """A Milvus collection of binary codes, searched by Hamming distance.

    Connects on construction (within ``timeout``); the collection may not
    exist yet (:attr:`exists`), :meth:`load_codes` creates it.

    Args:
        uri (str): A Milvus Lite file (``'gallery.db'``; one process at a
            time) or a server URL (``'http://host:19530'``).
        collection (str): Collection name (letters, digits and ``_``).
        timeout (float): Seconds for connecting and for each request.
            Defaults to 30.

    Example::

        index = MilvusIndex('gallery.db', 'database')
        index.load_codes(load_codes('database.npz'))
        indices, distances = index.search(query_codes, k=10)
    """

    def __init__(self, uri: str, collection: str, timeout: float = 30.0):
        if not _COLLECTION_NAME.match(collection):
            raise MilvusIndexError(
                f'collection name {collection!r}: expected letters, digits '
                f'and "_", not starting with a digit')
        _check_uri(uri)
        self._milvus = _import_pymilvus(uri)
        self.uri, self.name, self.timeout = uri, collection, timeout
        self._alias = f'mmqueryopt-{uuid.uuid4().hex}'
        self._collection = None
        self._description: dict = {}
        with warnings.catch_warnings():
            # milvus-lite 2.5 imports pkg_resources, which warns.
            warnings.filterwarnings('ignore', 'pkg_resources is deprecated')
            try:
                self._milvus.connections.connect(
                    self._alias, uri=uri, timeout=timeout)
            except Exception as error:  # noqa: BLE001 (any cause: one line)
                detail = getattr(error, 'message', '') or str(error)
                where = ('open the Milvus Lite file (is another process '
                         'using it?)' if _is_lite(uri) else
                         f'reach Milvus within {timeout:g} s (is the server '
                         f'running?)')
                raise MilvusIndexError(
                    f'Milvus at {uri}: cannot {where}'
                    f'{": " + detail if detail else ""}') from None
        with self._requests('read the collection'):
            if self._milvus.utility.has_collection(
                    collection, using=self._alias, timeout=timeout):
                self._open()

    # -- the collection's state --------------------------------------------
    @property
    def exists(self) -> bool:
        """Whether the collection exists."""
        return self._collection is not None

    @property
    def nbits(self) -> Optional[int]:
        """Code length of the collection's codes (None before creation)."""
        return self._description.get('meta', {}).get('nbits')

    @property
    def meta(self) -> dict:
        """Model meta of the collection's codes (as in the codes file)."""
        return dict(self._description.get('meta', {}))

    @property
    def index_type(self) -> Optional[str]:
        """``'BIN_FLAT'`` or ``'BIN_IVF_FLAT'`` (None before creation)."""
        if not self.exists or not self._collection.indexes:
            return None
        return self._collection.indexes[0].params.get('index_type')

    def __len__(self) -> int:
        if not self.exists:
            return 0
        with self._requests('count the codes'):
            rows = self._collection.query(
                expr='', output_fields=['count(*)'], timeout=self.timeout,
                consistency_level='Strong')
        return int(rows[0]['count(*)'])

    def _open(self) -> None:
        """Read an existing collection; refuse one this module did not
        write."""
        self._collection = self._milvus.Collection(
            self.name, using=self._alias, timeout=self.timeout)
        try:
            description = json.loads(self._collection.description)
        except ValueError:
            description = None
        if not isinstance(description, dict) \
                or description.get('format') != _FORMAT:
            self._collection = None
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} was not written by '
                f'mmqueryopt (no codes meta in its description); use '
                f'another collection (--collection)') from None
        self._description = description
        self._collection.load(timeout=self.timeout)

    def _dim(self) -> int:
        field = next(f for f in self._collection.schema.fields
                     if f.name == _CODE)
        return int(field.params['dim'])

    # -- loading -----------------------------------------------------------
    def load_codes(self,
                   codes: Codes,
                   index_type: Optional[str] = None,
                   nlist: int = DEFAULT_NLIST,
                   source: str = 'the codes',
                   replace: bool = False) -> bool:
        """Make the collection hold ``codes`` (row ``i`` with id ``i``).

        An existing collection that holds them already is left as it is;
        one of another model, code length or gallery is refused (or, with
        ``replace``, dropped and written anew).

        Args:
            codes (Codes): Packed codes, their paths and model meta.
            index_type (str, optional): ``'BIN_FLAT'`` or
                ``'BIN_IVF_FLAT'``; None: BIN_FLAT for a new collection,
                any for an existing one.
            nlist (int): Clusters of a new ``BIN_IVF_FLAT`` index.
            source (str): Names the codes in messages (e.g. their file).
            replace (bool): Drop an existing collection of this module
                first. Defaults to False.

        Returns:
            bool: Whether the codes were inserted (False: already there).

        Raises:
            MilvusIndexError: The collection's dimension, model or codes
                differ, it is incomplete, or Milvus refused a request.
        """
        check_index_type(self.uri, index_type, nlist)
        if self.exists and not replace:
            self.check_codes(codes, source, index_type)
            return False
        if self.exists:
            self.drop()
        self._create(codes.nbits, codes.meta, index_type or 'BIN_FLAT',
                     nlist, len(codes.packed), codes_digest(codes))
        try:
            self._insert(codes.packed)
        except BaseException:
            # Never leave a half-loaded collection behind.
            self.drop()
            raise
        return True

    def check_codes(self,
                    codes: Codes,
                    source: str = 'the codes',
                    index_type: Optional[str] = None) -> None:
        """Refuse an existing collection that does not hold exactly
        ``codes``, in this order: another vector dimension
        (:meth:`check_dim`); another model, code length or checkpoint (a
        line naming each of :data:`MODEL_KEYS` that differs); another index
        than ``index_type``; other codes or paths; fewer codes than it was
        created for (an interrupted load).

        Args:
            codes (Codes): Packed codes, their paths and model meta.
            source (str): Names them in the message.
            index_type (str, optional): The index asked for; None: any.
        """
        self.check_dim(codes.nbits, source)
        meta = codes.meta
        differ = [f'{key}: {self.meta.get(key)!r} vs {meta.get(key)!r}'
                  for key in MODEL_KEYS if self.meta.get(key) != meta.get(key)]
        if differ:
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} holds codes of '
                f'another model than {source} ({"; ".join(differ)}); use '
                f'another collection (--collection) or replace it '
                f'(--replace-collection)')
        if index_type is not None and index_type != self.index_type:
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} has a '
                f'{self.index_type} index, not {index_type}; search it as '
                f'it is or replace it (--replace-collection)')
        expected = self._description['num_codes']
        if self._description['codes_sha256'] != codes_digest(codes):
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} holds other codes '
                f'of this model ({expected} codes, not the '
                f'{len(codes.packed)} of {source}); use another collection '
                f'(--collection) or replace it (--replace-collection)')
        held = len(self)
        if held != expected:
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} holds {held} of its '
                f'{expected} codes (a load was interrupted or is still '
                f'running); replace it (--replace-collection)')

    def check_dim(self, nbits: int, source: str = 'the codes') -> None:
        """Refuse ``nbits``-bit codes if the collection's vectors have
        another dimension.

        Args:
            nbits (int): Their code length.
            source (str): Names them in the message.
        """
        dim = self._dim()
        if dim != padded_dim(nbits):
            raise MilvusIndexError(
                f'collection {self.name!r} at {self.uri} holds {dim}-bit '
                f'vectors, but {source} are {nbits}-bit codes '
                f'({padded_dim(nbits)}-bit vectors); use another '
                f'collection (--collection)')

    def _create(self, nbits, meta, index_type, nlist, num_codes, digest):
        milvus = self._milvus
        description = dict(
            format=_FORMAT, num_codes=num_codes, codes_sha256=digest,
            meta=dict(meta, nbits=nbits))
        schema = milvus.CollectionSchema([
            milvus.FieldSchema(_ID, milvus.DataType.INT64, is_primary=True),
            milvus.FieldSchema(
                _CODE, milvus.DataType.BINARY_VECTOR, dim=padded_dim(nbits))
        ], description=json.dumps(description, sort_keys=True))
        with self._requests('create the collection'):
            collection = milvus.Collection(
                self.name, schema, using=self._alias, timeout=self.timeout,
                consistency_level='Strong')
            collection.create_index(
                _CODE, dict(index_type=index_type, metric_type='HAMMING',
                            params=dict(nlist=nlist)
                            if index_type == 'BIN_IVF_FLAT' else {}),
                timeout=self.timeout)
            collection.load(timeout=self.timeout)
        self._collection, self._description = collection, description

    def _insert(self, packed: np.ndarray) -> None:
        """Insert rows in index order: ties then come back in index
        order."""
        with self._requests('insert codes'):
            for start in range(0, len(packed), _INSERT_ROWS):
                rows = packed[start:start + _INSERT_ROWS]
                # Columns, not row dicts: pymilvus converts row dicts one
                # field at a time, 4 times slower.
                self._collection.insert(
                    [np.arange(start, start + len(rows), dtype=np.int64),
                     [row.tobytes() for row in rows]],
                    timeout=self.timeout)
            self._collection.flush(timeout=self.timeout)

    def drop(self) -> None:
        """Drop the collection (if it exists)."""
        with self._requests('drop the collection'):
            if self._milvus.utility.has_collection(
                    self.name, using=self._alias, timeout=self.timeout):
                self._milvus.utility.drop_collection(
                    self.name, using=self._alias, timeout=self.timeout)
        self._collection, self._description = None, {}

    # -- search ------------------------------------------------------------
    def search(self,
               query_codes: ArrayLike,
               k: int,
               nbits: Optional[int] = None,
               nprobe: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query.

        Args:
            query_codes: ``(Q, nbits)`` or packed codes, as for
                :func:`pack_codes`, of the collection's code length.
            k (int): Items per query, at most :data:`MAX_TOPK`; more than
                the collection holds is clamped to its size, with a warning.
            nbits (int, optional): Code length of packed queries.
            nprobe (int, optional): Clusters searched by ``BIN_IVF_FLAT``
                (``nprobe == nlist``: exact); None: Milvus's default (8).

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(Q, k)`` int64 row indices of
            the loaded codes and ``(Q, k)`` int64 Hamming distances, each
            row ranked by (distance, index).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or k < 1:
            raise ValueError(f'k must be a positive int; got {k!r}')
        if k > MAX_TOPK:
            raise MilvusIndexError(
                f'top-k {k} is over Milvus\'s limit of {MAX_TOPK} results '
                f'per query; use the in-process index for more')
        if not self.exists:
            raise MilvusIndexError(
                f'collection {self.name!r} does not exist at {self.uri}; '
                f'load a codes file into it first')
        packed, query_nbits = pack_codes(query_codes, 'query_codes', nbits)
        if query_nbits != self.nbits:
            raise ValueError(
                f'query_codes are {query_nbits}-bit codes but collection '
                f'{self.name!r} holds {self.nbits}-bit codes; encode them '
                f'with the model (and code length) of the collection')
        size = len(self)
        if k > size:
            warnings.warn(f'k={k} is more than the {size} items of the '
                          f'collection; returning all {size}')
            k = size
        params = dict(metric_type='HAMMING', params={})
        if nprobe is not None:
            params['params']['nprobe'] = int(nprobe)
        indices = np.empty((len(packed), k), np.int64)
        distances = np.empty((len(packed), k), np.int64)
        with self._requests('search'):
            for start in range(0, len(packed), _QUERY_ROWS):
                hits = self._collection.search(
                    [row.tobytes() for row in
                     packed[start:start + _QUERY_ROWS]],
                    _CODE, params, limit=k, timeout=self.timeout,
                    consistency_level='Strong')
                for row, found in enumerate(hits, start):
                    ids = np.asarray(found.ids, np.int64)
                    dist = np.rint(found.distances).astype(np.int64)
                    if len(ids) != k:
                        raise MilvusIndexError(
                            f'Milvus returned {len(ids)} results, not {k}, '
                            f'for query {row}')
                    order = np.lexsort((ids, dist))
                    indices[row], distances[row] = ids[order], dist[order]
        return indices, distances

    # -- plumbing ----------------------------------------------------------
    @contextlib.contextmanager
    def _requests(self, what: str) -> Iterator[None]:
        """Milvus's errors as one :class:`MilvusIndexError` line."""
        try:
            yield
        except self._milvus.exceptions.MilvusException as error:
            detail = getattr(error, 'message', '') or str(error)
            raise MilvusIndexError(
                f'Milvus at {self.uri}: cannot {what} (collection '
                f'{self.name!r}): {detail}') from None

    def close(self) -> None:
        """Disconnect (a Milvus Lite server stays up until the process
        ends, for the next connection to the same file)."""
        self._milvus.connections.disconnect(self._alias)

    def __enter__(self) -> 'MilvusIndex':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = [
    'MilvusIndex', 'MilvusIndexError', 'MAX_TOPK', 'INDEX_TYPES',
    'DEFAULT_NLIST', 'check_index_type', 'codes_digest', 'default_collection', 'padded_dim',
    'quiet_milvus_logs'
]
