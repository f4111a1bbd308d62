"""Exact Hamming search over a gallery of binary codes.

Results are ranked by (Hamming distance, gallery index): ties go to the
earlier gallery item, the order :func:`~mmqueryopt.evaluation.functional.
evaluate_retrieval` ranks them in (``tie_break='index'``), so what a search
shows and what the metric scores agree.

How (chosen by measurement, ``benchmarks/bench_search.py``): each code is
kept as one unsigned word (``uint8`` to ``uint64``, the smallest that holds
its bytes; several ``uint64`` words past 64 bits). A query's distances to
the gallery are one XOR and one ``np.bitwise_count`` per word, in
cache-sized blocks. The
top ``k`` then needs no sort of the gallery: distances are integers in
``0..nbits``, so a binary search over the threshold distance ``t`` (the
smallest with at least ``k`` items at distance ``<= t``; about six counting
passes) splits the result into the fewer than ``k`` items nearer than ``t``
(sorted stably by distance) and the first items at distance ``t`` in index
order. That is exact and tie-correct by construction, O(N) per query.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmqueryopt.evaluation.functional.codes import ArrayLike, pack_codes
from mmqueryopt.fileio import Codes, check_same_model, load_codes, save_codes

# Items per XOR block: the XOR scratch (2 MiB of uint64) stays in cache,
# which measured 2.5 times faster than whole-gallery passes at 10M items.
_BLOCK_ITEMS = 1 << 18


def _word_dtype(num_bytes: int) -> np.dtype:
    """The smallest unsigned word holding ``num_bytes`` (uint64 past 8)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if num_bytes <= np.dtype(dtype).itemsize:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


class BinaryIndex:
    """An exact Hamming-distance index of binary codes.

    Optionally carries each item's image path and labels and the gallery's
    ``meta`` (see :mod:`.codes_file`), which :meth:`save` writes.

    Args:
        nbits (int): Code length.
        meta (dict, optional): Metadata of the codes (``method``,
            ``weights_sha256``, ...). Defaults to None (empty).

    Example::

        index = BinaryIndex.from_codes(gallery_codes, paths=paths)
        indices, distances = index.search(query_codes, k=10)
        index.save('gallery_codes.npz')
        index = BinaryIndex.load('gallery_codes.npz')
    """

    def __init__(self, nbits: int, meta: Optional[dict] = None):
        if isinstance(nbits, bool) or not isinstance(nbits, int) \
                or nbits < 1:
            raise ValueError(f'nbits must be a positive int; got {nbits!r}')
        self.nbits = nbits
        self.meta = dict(meta or {})
        self._num_bytes = -(-nbits // 8)
        self._dtype = _word_dtype(self._num_bytes)
        self._num_words = -(-self._num_bytes // self._dtype.itemsize)
        # (words, N): one contiguous row per word, so each XOR streams.
        self._words = np.empty((self._num_words, 0), self._dtype)
        self.paths: Optional[np.ndarray] = None
        self.labels: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self._words.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes held by the codes (not counting paths and labels)."""
        return self._words.nbytes

    @classmethod
    def from_codes(cls,
                   codes: ArrayLike,
                   nbits: Optional[int] = None,
                   paths: Optional[Sequence[str]] = None,
                   labels: Optional[ArrayLike] = None,
                   meta: Optional[dict] = None) -> 'BinaryIndex':
        """Build an index of ``codes``.

        Args:
            codes: As for :func:`pack_codes`.
            nbits (int, optional): Code length of packed codes. Defaults to
                None (codes are not packed).
            paths (Sequence[str], optional): ``(N,)`` image paths.
            labels (np.ndarray, optional): ``(N,)`` or ``(N, C)`` labels.
            meta (dict, optional): Metadata of the codes.

        Returns:
            BinaryIndex: The index, items in the order of ``codes``.
        """
        packed, nbits = pack_codes(codes, 'codes', nbits)
        index = cls(nbits, meta)
        index._add_packed(packed, paths, labels)
        return index

    @classmethod
    def load(cls, *paths: str) -> 'BinaryIndex':
        """Build an index of one or more codes files, in the given order.

        Args:
            *paths (str): Codes files of one model (same ``method``,
                ``nbits`` and ``weights_sha256`` in their meta).

        Returns:
            BinaryIndex: Their items one after the other, with their paths,
            their labels (in every file or in none) and the first file's
            meta.

        Raises:
            CodesFileError: A file is not a codes file.
            ValueError: No file given, or the files come from different
                models.
        """
        if not paths:
            raise ValueError('give at least one codes file')
        index = None
        for path in paths:
            codes = load_codes(path)
            if index is None:
                index = cls(codes.nbits, codes.meta)
            else:
                check_same_model(index.meta, codes.meta, repr(paths[0]))
            index._add_packed(codes.packed,
                              codes.paths,
                              codes.labels,
                              source=repr(path))
        return index

    def save(self, path: str) -> None:
        """Write the index as a codes file (atomically).

        Args:
            path (str): The ``.npz`` file.

        Raises:
            ValueError: The index has no image paths (the file needs them).
        """
        if self.paths is None:
            raise ValueError('the index has no image paths; build it with '
                             'paths=... to save it as a codes file')
        save_codes(
            path,
            Codes(self.packed(), self.nbits, self.paths, self.labels,
                  self.meta))

    def packed(self) -> np.ndarray:
        """The codes as ``(N, ceil(nbits / 8))`` uint8 ``np.packbits`` rows.
        """
        as_bytes = np.ascontiguousarray(self._words.T).view(np.uint8)
        return as_bytes.reshape(len(self), -1)[:, :self._num_bytes]

    def add(self,
            codes: ArrayLike,
            nbits: Optional[int] = None,
            paths: Optional[Sequence[str]] = None,
            labels: Optional[ArrayLike] = None) -> None:
        """Append items (copies the index's codes once per call).

        Args:
            codes: As for :func:`pack_codes`, of this index's code length.
            nbits (int, optional): Code length of packed codes.
            paths (Sequence[str], optional): Their image paths; required
                when the index has paths, refused when it has none.
            labels (np.ndarray, optional): Their labels, likewise.
        """
        packed, code_nbits = pack_codes(codes, 'codes', nbits)
        self._check_nbits(code_nbits, 'codes')
        self._add_packed(packed, paths, labels)

    def _add_packed(self,
                    packed: np.ndarray,
                    paths,
                    labels,
                    source: str = 'codes') -> None:
        self.paths = self._extend(self.paths, paths, len(packed), 'paths',
                                  source)
        self.labels = self._extend(self.labels, labels, len(packed), 'labels',
                                   source)
        words = self._as_words(packed).T
        # Into an empty index: no copy (one word per code is already
        # contiguous), so building holds the codes once, not twice.
        self._words = np.ascontiguousarray(words) if len(self) == 0 else \
            np.concatenate([self._words, words], axis=1)

    def _as_words(self, packed: np.ndarray) -> np.ndarray:
        """``(n, words)`` words of ``(n, ceil(nbits / 8))`` packed rows."""
        # Zero-padded to whole words: padding bits are 0 on both sides of
        # an XOR, so they never count.
        padded = np.zeros(
            (len(packed), self._num_words * self._dtype.itemsize), np.uint8)
        padded[:, :self._num_bytes] = packed
        return padded.view(self._dtype)

    def _extend(self, current, new, num_new, name, source):
        """``current`` with ``new`` appended; both or neither must exist."""
        if len(self) > 0 and (current is None) != (new is None):
            has = current is not None
            raise ValueError(
                f'the index {"has" if has else "has no"} {name}, so the '
                f'items added from {source} must {"" if has else "not "}'
                f'come with {name}')
        if new is None:
            return current
        new = np.asarray(new, dtype=str if name == 'paths' else None)
        if new.shape[:1] != (num_new, ):
            raise ValueError(f'{name} of {source} must have {num_new} rows, '
                             f'one per code; got shape {new.shape}')
        return new if current is None else np.concatenate([current, new])

    def _check_nbits(self, nbits: int, name: str) -> None:
        if nbits != self.nbits:
            raise ValueError(
                f'{name} are {nbits}-bit codes but the index holds '
                f'{self.nbits}-bit codes; encode them with the model (and '
                f'code length) of the index')

    def _query_words(self, query_codes, nbits) -> np.ndarray:
        """``(Q, words)`` words of the queries, checked against the index.
        """
        if len(self) == 0:
            raise ValueError('the index is empty; add codes first')
        packed, query_nbits = pack_codes(query_codes, 'query_codes', nbits)
        self._check_nbits(query_nbits, 'query_codes')
        return self._as_words(packed)

    def _distance_passes(self, query_words: np.ndarray):
        """Yield each query's ``(N,)`` distances (one reused buffer)."""
        scratch = np.empty(min(len(self), _BLOCK_ITEMS), self._dtype)
        distances = np.empty(len(self),
                             np.uint8 if self.nbits < 256 else np.uint16)
        for query in query_words:
            for start in range(0, len(self), _BLOCK_ITEMS):
                words = self._words[:, start:start + _BLOCK_ITEMS]
                part = scratch[:words.shape[1]]
                out = distances[start:start + _BLOCK_ITEMS]
                np.bitwise_xor(words[0], query[0], out=part)
                np.bitwise_count(part, out=out)
                for word in range(1, self._num_words):
                    np.bitwise_xor(words[word], query[word], out=part)
                    out += np.bitwise_count(part)
            yield distances

    def search(self,
               query_codes: ArrayLike,
               k: int,
               nbits: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of each query, exactly.

        Args:
            query_codes: ``(Q, nbits)`` or packed codes, as for
                :func:`pack_codes`, of this index's code length.
            k (int): Items per query; more than the index holds is clamped
                to its size, with a warning.
            nbits (int, optional): Code length of packed queries.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(Q, k)`` int64 gallery indices
            and ``(Q, k)`` int64 Hamming distances, each row ranked by
            (distance, gallery index).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or k < 1:
            raise ValueError(f'k must be a positive int; got {k!r}')
        query_words = self._query_words(query_codes, nbits)
        if k > len(self):
            warnings.warn(f'k={k} is more than the {len(self)} items of the '
                          f'index; returning all {len(self)}')
            k = len(self)
        indices = np.empty((len(query_words), k), np.int64)
        found = np.empty((len(query_words), k), np.int64)
        at_most = np.empty(len(self), bool)
        for row, distances in enumerate(self._distance_passes(query_words)):
            # Smallest t with at least k items at distance <= t.
            low, high = 0, self.nbits
            while low < high:
                middle = (low + high) // 2
                np.less_equal(distances, middle, out=at_most)
                if np.count_nonzero(at_most) >= k:
                    high = middle
                else:
                    low = middle + 1
            nearer = np.flatnonzero(distances < low)
            # A stable sort of the few (< k) nearer items keeps index order
            # within a distance; items at the threshold are in index order.
            nearer = nearer[np.argsort(distances[nearer], kind='stable')]
            at = np.flatnonzero(distances == low)[:k - nearer.size]
            indices[row, :nearer.size] = nearer
            indices[row, nearer.size:] = at
            found[row] = distances[indices[row]]
        return indices, found

    def radius_search(self,
                      query_codes: ArrayLike,
                      radius: int,
                      nbits: Optional[int] = None
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """All items within Hamming distance ``radius`` of each query.

        Args:
            query_codes: As for :meth:`search`.
            radius (int): Largest distance included (``>= 0``).
            nbits (int, optional): Code length of packed queries.

        Returns:
            list[tuple[np.ndarray, np.ndarray]]: Per query, ``(M,)`` int64
            gallery indices and ``(M,)`` int64 distances, ranked by
            (distance, gallery index); ``M`` varies by query.
        """
        if isinstance(radius,
                      bool) or not isinstance(radius,
                                              (int, np.integer)) or radius < 0:
            raise ValueError(f'radius must be an int >= 0; got {radius!r}')
        results = []
        for distances in self._distance_passes(
                self._query_words(query_codes, nbits)):
            within = np.flatnonzero(distances <= radius)
            within = within[np.argsort(distances[within], kind='stable')]
            results.append((within, distances[within].astype(np.int64)))
        return results
