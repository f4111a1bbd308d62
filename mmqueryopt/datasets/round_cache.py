"""Decoded images of one ADSH round, shared by a rank's loader workers.

ADSH serves the same sampled images for a whole round (30 passes over 2,000
CUB images), so decoding each JPEG again every pass is mostly waste. A
:class:`RoundCache` keeps the decoded pixels (uint8, full size) in shared
memory mapped before the loader's workers fork: whichever process decodes an
image first stores it, every worker of the rank reads it from then on. The
random crops and flips run on a copy of those pixels as they would on a
fresh decode, so a cached pass gives the same tensors bit for bit.

Under DDP every rank builds its own dataset and so its own cache, holding
the images of its own shard. The round hook forgets the cache and frees its
memory when a round ends.
"""
import mmap
import multiprocessing
from typing import Dict, Iterator, Optional

import numpy as np

# Table row: (round generation, byte offset, height, width); a row is valid
# only while its generation is the cache's current one.
_ROW = 4
# Header: generation, bytes used, images stored, images beyond the budget,
# reads served.
_GENERATION, _USED, _STORED, _OVERFLOW, _HITS = range(5)


class RoundCacheError(ValueError):
    """The cache cannot work as configured."""


class RoundCache:
    """A budget of shared memory for decoded images, keyed by dataset index.

    Memory is mapped anonymously and shared (``MAP_SHARED``), so processes
    forked afterwards (the DataLoader's workers, persistent or not) share
    it; only the pages actually written take memory. Images are stored in
    the order they are first decoded until the budget is full; beyond it
    they are decoded every time as without a cache.

    Args:
        max_bytes (int): The budget of pixels, in bytes, per process tree
            (per rank). An image of ``H x W`` takes ``3 * H * W`` bytes.
        max_items (int): Table size: dataset indices must stay below it.
            Its untouched pages take no memory. Defaults to ``2**22``.
        owner (str): How the budget is named in error messages. Defaults to
            ``'LoadImageBGR.cache_bytes'``.
    """

    def __init__(self,
                 max_bytes: int,
                 max_items: int = 2**22,
                 owner: str = 'LoadImageBGR.cache_bytes'):
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise RoundCacheError(
                f'{owner} must be a positive number of bytes (e.g. '
                f'4 * 2**30) or None for no cache, got {max_bytes!r}')
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.owner = owner
        try:
            # No reservation up front: only written pages take memory.
            flags = mmap.MAP_SHARED | getattr(mmap, 'MAP_NORESERVE', 0)
            self._pixels = mmap.mmap(-1, max_bytes, flags=flags)
            self._index = mmap.mmap(-1, 8 * (8 + _ROW * max_items),
                                    flags=flags)
        except (OSError, OverflowError) as err:
            raise RoundCacheError(
                f'{owner}={max_bytes:,} bytes: cannot map that much shared '
                f'memory ({err}); lower it or set None') from err
        self._lock = multiprocessing.Lock()
        self._bind()
        self._header[_GENERATION] = 1

    def _bind(self) -> None:
        words = np.frombuffer(self._index, dtype=np.int64)
        self._header = words[:8]
        self._table = words[8:].reshape(self.max_items, _ROW)
        self._bytes = np.frombuffer(self._pixels, dtype=np.uint8)

    def __getstate__(self):
        # Anonymous shared memory reaches forked workers only; a pickled
        # copy (spawned workers) would be a private cache per worker.
        raise RoundCacheError(
            f'{self.owner}: the round cache is shared with DataLoader '
            f"workers by fork; this copy was pickled (mp_start_method "
            f"'spawn' or 'forkserver'?). Use env_cfg.mp_cfg.mp_start_method="
            f"'fork' or set {self.owner}=None")

    def get(self, index: int) -> Optional[np.ndarray]:
        """A writable copy of image ``index``, or None if not stored.

        Args:
            index (int): The dataset index (``sample_idx``).

        Returns:
            np.ndarray | None: (H, W, 3) uint8.
        """
        self._check_index(index)
        with self._lock:
            generation, offset, height, width = self._table[index].tolist()
            if generation != self._header[_GENERATION]:
                return None
            self._header[_HITS] += 1
        size = height * width * 3
        # The pixels were written before the row was published under the
        # lock, so they are complete; copy them out so that in-place
        # transforms never touch the shared bytes.
        return self._bytes[offset:offset + size].reshape(
            height, width, 3).copy()

    def put(self, index: int, img: np.ndarray) -> bool:
        """Store image ``index`` if the budget has room.

        Args:
            index (int): The dataset index.
            img (np.ndarray): (H, W, 3) uint8, as decoded.

        Returns:
            bool: Whether it was stored (False when already stored or
            beyond the budget).

        Raises:
            RoundCacheError: If the image alone exceeds the budget: the
                cache could never hold anything of this size.
        """
        self._check_index(index)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise RoundCacheError(
                f'the round cache stores (H, W, 3) uint8 images, got '
                f'{img.dtype} {img.shape}')
        size = img.size
        if size > self.max_bytes:
            raise RoundCacheError(
                f'{self.owner}={self.max_bytes:,} bytes is smaller than one '
                f'image ({img.shape[0]}x{img.shape[1]}x3 = {size:,} bytes): '
                f'the round cache could hold nothing. Give it room for a '
                f"round's images (CUB: 2,000 x ~0.55 MB; e.g. 4 * 2**30) or "
                f'set it to None to decode every pass')
        with self._lock:
            generation = self._header[_GENERATION]
            if self._table[index, 0] == generation:
                return False
            offset = int(self._header[_USED])
            if offset + size > self.max_bytes:
                self._header[_OVERFLOW] += 1
                return False
            self._header[_USED] = offset + size
        # Outside the lock: the range is ours alone.
        self._bytes[offset:offset + size] = img.reshape(-1)
        with self._lock:
            if self._header[_GENERATION] == generation:
                self._table[index] = (generation, offset, *img.shape[:2])
                self._header[_STORED] += 1
        return True

    def clear(self) -> None:
        """Forget every image (the round ended) and hand the written pages
        back to the system.

        Call it only while no loader worker is working, i.e. between
        epochs.
        """
        with self._lock:
            used = int(self._header[_USED])
            self._header[_GENERATION] += 1
            self._header[[_USED, _STORED, _OVERFLOW, _HITS]] = 0
        if used and hasattr(mmap, 'MADV_REMOVE'):
            # Frees the shared pages (they read as zeros afterwards).
            length = -(-used // mmap.PAGESIZE) * mmap.PAGESIZE
            self._pixels.madvise(mmap.MADV_REMOVE, 0,
                                 min(length, len(self._pixels)))

    def stats(self) -> Dict[str, int]:
        """Counters since the last :meth:`clear`, over all processes.

        Returns:
            dict[str, int]: ``images`` stored, ``bytes`` used,
            ``beyond_budget`` (decodes that did not fit) and ``hits``.
        """
        with self._lock:
            header = self._header.tolist()
        return dict(images=header[_STORED], bytes=header[_USED],
                    beyond_budget=header[_OVERFLOW], hits=header[_HITS])

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.max_items:
            raise RoundCacheError(
                f'dataset index {index} is outside the round cache\'s table '
                f'[0, {self.max_items})')

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_bytes={self.max_bytes})'


def round_caches(dataset) -> Iterator[RoundCache]:
    """The round caches of a dataset's pipeline (none when it has none).

    Args:
        dataset: A dataset with a ``pipeline`` (MMEngine ``Compose``), or a
            wrapper with ``dataset`` / ``datasets``.

    Yields:
        RoundCache: Of each transform that has one (``round_cache``).
    """
    inner = [getattr(dataset, 'dataset', None)] + list(
        getattr(dataset, 'datasets', []))
    for sub in inner:
        if sub is not None:
            yield from round_caches(sub)
    for transform in getattr(getattr(dataset, 'pipeline', None),
                             'transforms', []):
        cache = getattr(transform, 'round_cache', None)
        if cache is not None:
            yield cache
