"""The codes file: a gallery's binary codes, image paths, labels and meta.

A codes file is an ``.npz`` archive (``np.savez_compressed``) holding only
plain arrays, so it loads with ``allow_pickle=False`` and a crafted file can
run no code. Its keys:

* ``codes``: ``(N, ceil(nbits / 8))`` uint8, one ``np.packbits(bits)`` row
  per image. Bit ``j`` of a code is bit ``j`` of its row in numpy's default
  (big-endian) order: the most significant bit of byte ``j // 8`` is bit
  ``8 * (j // 8)``; the padding bits of the last byte are 0.
* ``nbits``: 0-d int64, the code length.
* ``paths``: ``(N,)`` unicode, the image of each code.
* ``labels`` (only when known): ``(N,)`` class ids or ``(N, C)`` multi-hot,
  integer or bool.
* ``meta``: 0-d unicode, a JSON object. Its ``nbits`` equals the code
  length; ``method`` (the model's name) and ``weights_sha256`` (of the
  checkpoint that encoded the gallery) say which model the codes came from,
  so that :func:`check_same_model` can refuse queries encoded by another.
"""
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mmqueryopt.fileio import atomic_write

# Metadata a query model must share with the gallery's model.
MODEL_KEYS = ('method', 'nbits', 'weights_sha256')
_REQUIRED = ('codes', 'nbits', 'paths', 'meta')


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
    """The content of a codes file.

    Attributes:
        packed (np.ndarray): ``(N, ceil(nbits / 8))`` uint8 packed codes.
        nbits (int): Code length.
        paths (np.ndarray): ``(N,)`` unicode image paths.
        labels (np.ndarray | None): ``(N,)`` or ``(N, C)`` labels, or None.
        meta (dict): JSON-serialisable metadata; ``meta['nbits'] == nbits``.
    """
    packed: np.ndarray
    nbits: int
    paths: np.ndarray
    labels: Optional[np.ndarray] = None
    meta: dict = field(default_factory=dict)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file (e.g. a checkpoint, for ``weights_sha256``)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def save_codes(path: str, codes: Codes) -> None:
    """Write ``codes`` to ``path`` atomically.

    The archive is built in memory and written with
    :func:`mmqueryopt.fileio.atomic_write`, so a reader (or a
    kill mid-write) sees the old file or the new one, never a part.

    Args:
        path (str): The ``.npz`` file to write.
        codes (Codes): What to write; checked as :func:`load_codes` checks
            a file, so every file written here loads.
    """
    meta = dict(codes.meta, nbits=int(codes.nbits))
    arrays = dict(codes=np.ascontiguousarray(codes.packed),
                  nbits=np.int64(codes.nbits),
                  paths=np.asarray(codes.paths, dtype=str),
                  meta=np.array(json.dumps(meta, sort_keys=True)))
    if codes.labels is not None:
        arrays['labels'] = np.asarray(codes.labels)
    _check(path, arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def load_codes(path: str) -> Codes:
    """Read a codes file, without unpickling anything.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        Codes: Its content.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CodesFileError: The file is not a codes file: not an npz archive, a
            key missing, an object (pickled) array, or a wrong dtype or
            shape; the message names the file and the key.
    """
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError as error:
                    # np.load refuses object arrays: they would unpickle.
                    raise CodesFileError(path, key, str(error)) from None
    except CodesFileError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        # np.load's answers to a truncated archive or to a file that is
        # neither npz nor npy.
        raise CodesFileError(path, None, f'is not a readable npz archive '
                             f'({error})') from None
    meta = _check(path, arrays)
    return Codes(arrays['codes'], int(arrays['nbits']), arrays['paths'],
                 arrays.get('labels'), meta)


def _check(path: str, arrays: dict) -> dict:
    """Check the arrays of a codes file; return its meta as a dict."""
    for key in _REQUIRED:
        if key not in arrays:
            raise CodesFileError(path, key, 'missing')
    nbits = arrays['nbits']
    if nbits.ndim != 0 or nbits.dtype.kind not in 'iu' or int(nbits) < 1:
        raise CodesFileError(
            path, 'nbits', f'must be a positive integer scalar; got {nbits!r}')
    nbits = int(nbits)
    packed = arrays['codes']
    num_bytes = -(-nbits // 8)
    if packed.dtype != np.uint8 or packed.ndim != 2 \
            or packed.shape[1] != num_bytes:
        raise CodesFileError(
            path, 'codes', f'must be uint8 of shape (N, {num_bytes}) for '
            f'nbits={nbits}; got {packed.dtype} {packed.shape}')
    num_items = packed.shape[0]
    paths = arrays['paths']
    if paths.dtype.kind != 'U' or paths.shape != (num_items, ):
        raise CodesFileError(
            path, 'paths', f'must be unicode of shape ({num_items},); got '
            f'{paths.dtype} {paths.shape}')
    labels = arrays.get('labels')
    if labels is not None and (labels.dtype.kind not in 'iub' or labels.ndim
                               not in (1, 2) or labels.shape[0] != num_items):
        raise CodesFileError(
            path, 'labels', f'must be integer or bool of shape '
            f'({num_items},) or ({num_items}, C); got {labels.dtype} '
            f'{labels.shape}')
    meta = arrays['meta']
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
