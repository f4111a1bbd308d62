"""The codes file: binary codes with their image paths, labels and meta.

One format, written by :func:`save_codes` (``tools/encode.py --out``,
``tools/visualize_bits.py --save-relaxed``) and read by
:func:`read_codes_file` (every tool that takes codes). An ``.npz`` archive
(``np.savez_compressed``) of plain arrays only, so it loads with
``allow_pickle=False`` and a crafted file can run no code. Its keys:

* ``format_version``: 0-d int64, :data:`FORMAT_VERSION` (2).
* ``nbits``: 0-d int64, the code length.
* ``meta``: 0-d unicode, a JSON object. Its ``nbits`` equals the code
  length; ``method`` (the model's name) and ``weights_sha256`` (of the
  checkpoint) say which model the codes came from, so that
  :func:`check_same_model` can refuse queries encoded by another.
* Then one set of codes under the keys below, or two sides, each key
  prefixed with ``query_`` and ``database_`` (``query_codes``, ...):

  * ``codes``: ``(N, ceil(nbits / 8))`` uint8, one ``np.packbits(bits)``
    row per image. Bit ``j`` of a code is bit ``j`` of its row in numpy's
    default (big-endian) order: the most significant bit of byte ``j // 8``
    is bit ``8 * (j // 8)``; the padding bits of the last byte are 0.
  * ``paths`` (optional): ``(N,)`` unicode, the image of each code.
  * ``labels`` (optional): ``(N,)`` class ids or ``(N, C)`` multi-hot (0
    and 1), integer or bool.
  * ``relaxed_codes`` (optional): ``(N, nbits)`` float, the real-valued
    codes whose signs (``>= 0`` is bit 1) are ``codes``.

Other keys (a test run's ``pr_precision`` and ``pr_recall``) are kept in
:attr:`CodesFile.extras` and checked by their readers.

The older layouts still load, each as the layout above:

* version 1, ``tools/encode.py`` before format_version: ``codes``,
  ``nbits``, ``paths``, ``meta``, optional ``labels``;
* a test dump (``tools/test.py --out``, ``HammingMAP(dump_file=...)``):
  ``query_codes``, ``query_labels``, ``database_codes``,
  ``database_labels`` with ``(N, nbits)`` codes, no ``nbits``, no meta;
* relaxed codes (``tools/visualize_bits.py --save-relaxed`` before
  format_version): ``relaxed_codes``, ``codes`` ``(N, nbits)`` int8,
  ``paths``, optional ``labels``, no ``nbits``, no meta;
* a single ``.npy`` array of ``(N, nbits)`` codes.

Unpacked codes (old layouts, ``.npy``) may be in {-1, +1}, in {0, 1} (1 is
bit 1 in both) or bool. Every problem raises :class:`CodesFileError`, naming
the file, the key and what was expected.
"""
import hashlib
import io
import json
import os.path as osp
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Union

import numpy as np

from .atomic import atomic_write

FORMAT_VERSION = 2
# Metadata a query model must share with the gallery's model.
MODEL_KEYS = ('method', 'nbits', 'weights_sha256')
SIDES = ('query', 'database')
# Per-side keys of the current format (after the side's prefix).
_SET_KEYS = ('codes', 'paths', 'labels', 'relaxed_codes')
_V1_REQUIRED = ('codes', 'nbits', 'paths', 'meta')
_DUMP_REQUIRED = ('query_codes', 'query_labels', 'database_codes',
                  'database_labels')
# What np.load and zipfile raise on a truncated or corrupt file.
_UNREADABLE = (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error)


class CodesFileError(ValueError):
    """A codes file that cannot be used.

    Args:
        path (str): The file.
        key (str | None): The archive key at fault; None for the whole file.
        detail (str): What is wrong.
    """

    def __init__(self, path: str, key: Optional[str], detail: str):
        self.path, self.key, self.detail = path, key, detail
        where = f'codes file {path!r}'
        if key is not None:
            where += f', key {key!r}'
        super().__init__(f'{where}: {detail}')


@dataclass
class Codes:
    """One set of codes.

    Attributes:
        packed (np.ndarray): ``(N, ceil(nbits / 8))`` uint8 packed codes.
        nbits (int): Code length.
        paths (np.ndarray | None): ``(N,)`` unicode image paths.
        labels (np.ndarray | None): ``(N,)`` or ``(N, C)`` labels.
        meta (dict): JSON-serialisable metadata; ``meta['nbits'] == nbits``.
        relaxed (np.ndarray | None): ``(N, nbits)`` real-valued codes whose
            signs are the codes.
    """
    packed: np.ndarray
    nbits: int
    paths: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    meta: dict = field(default_factory=dict)
    relaxed: Optional[np.ndarray] = None

    def signs(self) -> np.ndarray:
        """``(N, nbits)`` int8 codes in {-1, +1}."""
        bits = np.unpackbits(self.packed, axis=1, count=self.nbits)
        return (2 * bits.astype(np.int8) - 1).reshape(-1, self.nbits)


@dataclass
class CodesFile:
    """What :func:`read_codes_file` read.

    Attributes:
        path (str): The file.
        layout (str): ``'codes file'`` (current format), ``'codes file
            v1'``, ``'test dump'``, ``'relaxed codes'`` or ``'npy'``.
        sides (dict[str, Codes]): ``{'': codes}`` for one set of codes,
            ``{'query': ..., 'database': ...}`` for two sides.
        extras (dict[str, np.ndarray]): The keys no layout defines.
    """
    path: str
    layout: str
    sides: Dict[str, Codes]
    extras: Dict[str, np.ndarray] = field(default_factory=dict)

    def side(self, name: Optional[str] = None) -> Codes:
        """The codes of side ``name`` (None: the file's one set).

        Raises:
            CodesFileError: The file has no such side.
        """
        key = name or ''
        if key in self.sides:
            return self.sides[key]
        if key == '':
            raise CodesFileError(
                self.path, None, f'holds query and database codes (a '
                f'{self.layout}), not one set of codes')
        raise CodesFileError(
            self.path, None, f'holds one set of codes (a {self.layout}), no '
            f'{name} side')


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file (e.g. a checkpoint, for ``weights_sha256``)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def save_codes(path: str,
               codes: Union[Codes, Mapping[str, Codes]],
               extras: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """Write a codes file of the current format atomically.

    The archive is built in memory and written with
    :func:`mmqueryopt.fileio.atomic_write`, so a reader (or a kill
    mid-write) sees the old file or the new one, never a part.

    Args:
        path (str): The ``.npz`` file to write.
        codes (Codes | Mapping[str, Codes]): One set of codes, or
            ``{'query': ..., 'database': ...}``; the sides share one code
            length and one meta. Checked as :func:`read_codes_file` checks
            a file, so every file written here loads.
        extras (Mapping[str, np.ndarray], optional): Further plain arrays
            (e.g. ``pr_precision``), under keys the format does not use.
    """
    sides = {'': codes} if isinstance(codes, Codes) else dict(codes)
    if set(sides) not in ({''}, set(SIDES)):
        raise ValueError(f'codes must be one Codes or a dict with keys '
                         f'{SIDES}; got {sorted(sides)}')
    first = next(iter(sides.values()))
    nbits = int(first.nbits)
    meta = dict(first.meta, nbits=nbits)
    arrays = dict(format_version=np.int64(FORMAT_VERSION),
                  nbits=np.int64(nbits),
                  meta=np.array(json.dumps(meta, sort_keys=True)))
    for side, one in sides.items():
        prefix = f'{side}_' if side else ''
        if int(one.nbits) != nbits or dict(one.meta, nbits=nbits) != meta:
            raise ValueError(f'the {side} codes have another nbits or meta '
                             f'than the {SIDES[0]} codes; a file has one')
        arrays[f'{prefix}codes'] = np.ascontiguousarray(one.packed)
        if one.paths is not None:
            arrays[f'{prefix}paths'] = np.asarray(one.paths, dtype=str)
        if one.labels is not None:
            arrays[f'{prefix}labels'] = np.asarray(one.labels)
        if one.relaxed is not None:
            arrays[f'{prefix}relaxed_codes'] = np.asarray(one.relaxed)
    for key, value in (extras or {}).items():
        if key in arrays or _format_key(key):
            raise ValueError(f'extra key {key!r} is a key of the format')
        arrays[key] = np.asarray(value)
    _current(path, arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def read_codes_file(path: str, need_labels: bool = False) -> CodesFile:
    """Read and check a codes file of any layout (see the module), without
    unpickling anything.

    Args:
        path (str): An ``.npz`` codes file or an ``.npy`` array of codes.
        need_labels (bool): Refuse a side without labels. Defaults to False.

    Returns:
        CodesFile: Its sides, in the current format's terms.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CodesFileError: Anything else: an unreadable or empty file, an
            object (pickled) array, a missing key, a wrong dtype, shape or
            value, labels that do not match the codes, sides of two code
            lengths; the message names the file and the key.
    """
    arrays = _load_arrays(path)
    if isinstance(arrays, np.ndarray):
        result = CodesFile(path, 'npy',
                           {'': _unpacked(path, None, arrays, None)})
    elif 'format_version' in arrays:
        result = _current(path, arrays)
    elif 'relaxed_codes' in arrays:
        result = _relaxed_v1(path, arrays)
    elif any(key.startswith(('query_', 'database_')) for key in arrays):
        result = _dump_v1(path, arrays)
    elif {'codes', 'nbits', 'meta'} & set(arrays):
        result = _codes_v1(path, arrays)
    else:
        raise CodesFileError(
            path, None, "holds none of the codes-file layouts: missing "
            "'format_version' and 'codes' (tools/encode.py), 'query_codes' "
            "and 'database_codes' (tools/test.py --out), 'relaxed_codes' "
            f"(--save-relaxed); it has {sorted(arrays)}")
    if need_labels:
        for side, codes in result.sides.items():
            if codes.labels is None:
                key = f'{side}_labels' if side else 'labels'
                raise CodesFileError(path, key, 'missing: the metrics need '
                                     'the labels of every code')
    return result


def load_codes(path: str) -> Codes:
    """Read a gallery: a codes file holding one set of codes with paths.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        Codes: Its content.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CodesFileError: See :func:`read_codes_file`; also a file of two
            sides or without ``paths``.
    """
    codes = read_codes_file(path).side()
    if codes.paths is None:
        raise CodesFileError(path, 'paths', 'missing: a gallery needs the '
                             'image of each code')
    return codes


def read_labels(path: str, num_codes: int, codes_path: str) -> np.ndarray:
    """An ``.npy`` of labels for the codes of another file.

    Args:
        path (str): ``(N,)`` class ids or ``(N, C)`` multi-hot ``.npy``.
        num_codes (int): N, the number of codes.
        codes_path (str): The file of those codes, for the message.

    Returns:
        np.ndarray: The labels.

    Raises:
        FileNotFoundError, CodesFileError: As :func:`read_codes_file`.
    """
    labels = _load_arrays(path)
    if not isinstance(labels, np.ndarray):
        raise CodesFileError(path, None, 'must be one .npy array of labels, '
                             'not an npz archive')
    _check_labels(path, None, labels, num_codes, f'the codes of {codes_path}')
    return labels


def _load_arrays(path: str) -> Union[np.ndarray, Dict[str, np.ndarray]]:
    """Every array of an ``.npz`` (by key), or the array of an ``.npy``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'codes file not found: {path}')
    if osp.getsize(path) == 0:
        raise CodesFileError(path, None, 'is empty (0 bytes)')
    try:
        loaded = np.load(path, allow_pickle=False)
    except _UNREADABLE as error:
        raise CodesFileError(path, None, _unreadable(error)) from None
    if isinstance(loaded, np.ndarray):
        return loaded
    if not hasattr(loaded, 'files'):
        raise CodesFileError(path, None, 'is a pickle, not an npz or npy '
                             'file of plain arrays')
    arrays = {}
    with loaded:
        for key in loaded.files:
            try:
                arrays[key] = loaded[key]
            except _UNREADABLE as error:
                raise CodesFileError(path, key, _unreadable(error)) from None
    return arrays


def _unreadable(error: Exception) -> str:
    if 'allow_pickle' in str(error):
        return ('an object (pickled) array; only plain arrays are read '
                '(allow_pickle=False)')
    return (f'not a readable npz archive or npy file, truncated or corrupt '
            f'({type(error).__name__}: {error})')


def _format_key(key: str) -> bool:
    for side in SIDES:
        key = key[len(side) + 1:] if key.startswith(f'{side}_') else key
    return key in _SET_KEYS + ('format_version', 'nbits', 'meta')


def _current(path: str, arrays: dict) -> CodesFile:
    """Check a file of the current format."""
    version = arrays.get('format_version')
    if version is None or version.shape != () or version.dtype.kind not in \
            'iu' or int(version) != FORMAT_VERSION:
        raise CodesFileError(
            path, 'format_version', f'must be {FORMAT_VERSION} (the format '
            f'this version reads); got {version!r}')
    for key in ('nbits', 'meta'):
        if key not in arrays:
            raise CodesFileError(path, key, 'missing')
    nbits = _nbits(path, arrays['nbits'])
    meta = _meta(path, arrays['meta'], nbits)
    prefixes = ['query_', 'database_'] if 'query_codes' in arrays or \
        'database_codes' in arrays else ['']
    sides = {}
    for prefix in prefixes:
        key = f'{prefix}codes'
        if key not in arrays:
            raise CodesFileError(path, key, 'missing')
        packed = arrays[key]
        _check_packed(path, key, packed, nbits)
        num = len(packed)
        paths = arrays.get(f'{prefix}paths')
        if paths is not None:
            _check_paths(path, f'{prefix}paths', paths, num)
        labels = arrays.get(f'{prefix}labels')
        if labels is not None:
            _check_labels(path, f'{prefix}labels', labels, num, key)
        relaxed = arrays.get(f'{prefix}relaxed_codes')
        if relaxed is not None:
            _check_relaxed(path, f'{prefix}relaxed_codes', relaxed,
                           np.unpackbits(packed, axis=1, count=nbits))
        sides[prefix[:-1]] = Codes(packed, nbits, paths, labels, meta,
                                   relaxed)
    _check_labels_agree(path, sides, prefixes)
    extras = {k: v for k, v in arrays.items() if not _format_key(k)}
    return CodesFile(path, 'codes file', sides, extras)


def _codes_v1(path: str, arrays: dict) -> CodesFile:
    """``tools/encode.py`` before format_version: packed, always paths."""
    for key in _V1_REQUIRED:
        if key not in arrays:
            raise CodesFileError(path, key, 'missing')
    arrays = dict(arrays, format_version=np.int64(FORMAT_VERSION))
    result = _current(path, arrays)
    result.layout = 'codes file v1'
    return result


def _dump_v1(path: str, arrays: dict) -> CodesFile:
    """A test dump: both sides, (N, nbits) codes and labels, no meta."""
    for key in _DUMP_REQUIRED:
        if key not in arrays:
            raise CodesFileError(path, key, 'missing: a tools/test.py --out '
                                 f'file holds {", ".join(_DUMP_REQUIRED)}')
    sides = {}
    for side in SIDES:
        codes = _unpacked(path, f'{side}_codes', arrays[f'{side}_codes'],
                          None)
        _check_labels(path, f'{side}_labels', arrays[f'{side}_labels'],
                      len(codes.packed), f'{side}_codes')
        codes.labels = arrays[f'{side}_labels']
        sides[side] = codes
    if sides['query'].nbits != sides['database'].nbits:
        raise CodesFileError(
            path, 'database_codes', f'must have the code length of '
            f"'query_codes' ({sides['query'].nbits} bits); got "
            f"{sides['database'].nbits} bits")
    _check_labels_agree(path, sides, ['query_', 'database_'])
    extras = {k: v for k, v in arrays.items() if k not in _DUMP_REQUIRED}
    return CodesFile(path, 'test dump', sides, extras)


def _relaxed_v1(path: str, arrays: dict) -> CodesFile:
    """``--save-relaxed`` before format_version: relaxed and int8 codes."""
    for key in ('relaxed_codes', 'codes', 'paths'):
        if key not in arrays:
            raise CodesFileError(path, key, 'missing')
    codes = _unpacked(path, 'codes', arrays['codes'], None)
    num = len(codes.packed)
    _check_relaxed(path, 'relaxed_codes', arrays['relaxed_codes'],
                   np.unpackbits(codes.packed, axis=1, count=codes.nbits))
    _check_paths(path, 'paths', arrays['paths'], num)
    codes.relaxed, codes.paths = arrays['relaxed_codes'], arrays['paths']
    if 'labels' in arrays:
        _check_labels(path, 'labels', arrays['labels'], num, 'codes')
        codes.labels = arrays['labels']
    return CodesFile(path, 'relaxed codes', {'': codes})


def _unpacked(path: str, key: Optional[str], codes: np.ndarray,
              nbits: Optional[int]) -> Codes:
    """Codes of an older layout, (N, nbits) in {-1, +1}, {0, 1} or bool."""
    if codes.dtype.kind not in 'biuf' or codes.ndim != 2 \
            or codes.shape[1] < 1:
        raise CodesFileError(
            path, key, f'must be (N, nbits) binary codes of a numeric or '
            f'bool dtype; got {codes.dtype} of shape {codes.shape}')
    if codes.dtype.kind == 'b':
        bits = codes
    else:
        bits = codes == 1
        # 1 is bit 1 in both conventions; only a mix of -1 and 0 is unclear.
        if not ((bits | (codes == -1)).all() or (bits | (codes == 0)).all()):
            values = np.unique(codes)[:8].tolist()
            raise CodesFileError(
                path, key, f'must hold binary codes in {{-1, +1}} or in '
                f'{{0, 1}}; got values {values} in shape {codes.shape}')
    return Codes(np.packbits(bits, axis=1), codes.shape[1])


def _nbits(path: str, nbits: np.ndarray) -> int:
    if nbits.ndim != 0 or nbits.dtype.kind not in 'iu' or int(nbits) < 1:
        raise CodesFileError(
            path, 'nbits', f'must be a positive integer scalar; got {nbits!r}')
    return int(nbits)


def _meta(path: str, meta: np.ndarray, nbits: int) -> dict:
    try:
        if meta.dtype.kind != 'U' or meta.ndim != 0:
            raise ValueError(f'got {meta.dtype} of shape {meta.shape}')
        meta = json.loads(str(meta))
        if not isinstance(meta, dict):
            raise ValueError(f'got {type(meta).__name__}')
    except ValueError as error:
        detail = f'must be a JSON object in a 0-d unicode array ({error})'
        raise CodesFileError(path, 'meta', detail) from None
    if meta.get('nbits') != nbits:
        raise CodesFileError(
            path, 'meta', f"meta['nbits'] is {meta.get('nbits')!r} but the "
            f'codes have nbits={nbits}')
    return meta


def _check_packed(path: str, key: str, packed: np.ndarray,
                  nbits: int) -> None:
    num_bytes = -(-nbits // 8)
    if packed.dtype != np.uint8 or packed.ndim != 2 \
            or packed.shape[1] != num_bytes:
        raise CodesFileError(
            path, key, f'must be uint8 of shape (N, {num_bytes}) for '
            f'nbits={nbits}; got {packed.dtype} {packed.shape}')
    padding = (1 << (8 * num_bytes - nbits)) - 1
    if padding and len(packed) and (packed[:, -1] & padding).any():
        raise CodesFileError(
            path, key, f'padding bits (past bit {nbits - 1} of the last '
            f'byte) must be 0')


def _check_paths(path: str, key: str, paths: np.ndarray, num: int) -> None:
    if paths.dtype.kind != 'U' or paths.shape != (num, ):
        raise CodesFileError(
            path, key, f'must be unicode of shape ({num},); got '
            f'{paths.dtype} {paths.shape}')


def _check_labels(path: str, key: Optional[str], labels: np.ndarray,
                  num: int, codes_name: str) -> None:
    if labels.dtype.kind not in 'iub' or labels.ndim not in (1, 2):
        raise CodesFileError(
            path, key, f'labels must be integer or bool, class ids (N,) or '
            f'multi-hot (N, C); got {labels.dtype} {labels.shape}')
    if labels.shape[0] != num:
        raise CodesFileError(
            path, key, f'has {labels.shape[0]} labels (shape {labels.shape}) '
            f'but {codes_name} has {num} codes: expected shape ({num},) or '
            f'({num}, C)')
    if labels.ndim == 2 and not np.isin(labels, (0, 1)).all():
        raise CodesFileError(path, key, 'multi-hot labels (N, C) must hold '
                             'only 0 and 1')


def _check_labels_agree(path: str, sides: Dict[str, Codes],
                        prefixes: list) -> None:
    labels = [sides[p[:-1]].labels for p in prefixes]
    if len(labels) == 2 and labels[0] is not None and labels[1] is not None \
            and labels[0].shape[1:] != labels[1].shape[1:]:
        raise CodesFileError(
            path, 'database_labels', f'must be of the kind of '
            f"'query_labels' (shape {labels[0].shape}); got "
            f'{labels[1].shape}')


def _check_relaxed(path: str, key: str, relaxed: np.ndarray,
                   bits: np.ndarray) -> None:
    if relaxed.dtype.kind != 'f' or relaxed.shape != bits.shape:
        raise CodesFileError(
            path, key, f'must be float of shape {bits.shape} (one value '
            f'per bit); got {relaxed.dtype} {relaxed.shape}')
    if not np.isfinite(relaxed).all():
        raise CodesFileError(path, key, 'holds NaN or infinite values')
    if not np.array_equal(relaxed >= 0, bits.astype(bool)):
        raise CodesFileError(path, key, 'its signs (>= 0 is bit 1) differ '
                             'from the codes')


def check_same_model(gallery_meta: dict,
                     query_meta: dict,
                     gallery_name: str = 'gallery') -> None:
    """Refuse queries encoded by another model than the gallery's.

    Codes of two models (or two code lengths, or two checkpoints of one
    model) are not comparable: their Hamming distances mean nothing.

    Args:
        gallery_meta (dict): The gallery's meta (``Codes.meta``).
        query_meta (dict): The same keys for the query model.
        gallery_name (str): Names the gallery in the message, e.g. its
            file. Defaults to ``'gallery'``.

    Raises:
        ValueError: One of :data:`MODEL_KEYS` differs; the message lists
            each such key with both values.
    """
    differ = [
        f'{key}: {gallery_meta.get(key)!r} vs {query_meta.get(key)!r}'
        for key in MODEL_KEYS if gallery_meta.get(key) != query_meta.get(key)
    ]
    if differ:
        raise ValueError(f'the query model does not match the model that '
                         f'encoded {gallery_name} ({"; ".join(differ)}); '
                         f're-encode the gallery with this model')
