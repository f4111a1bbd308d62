"""Image loading that turns every listed file into 3-channel BGR or fails.

MMCV's ``LoadImageFromFile`` decodes with OpenCV, which fills a truncated JPEG
with grey and only prints a libjpeg warning, and drops alpha without a word.
Decoding with PIL instead makes truncated and unreadable files errors and
converts grayscale, palette, CMYK and RGBA images the way the authors' PIL
loader did (``Image.convert('RGB')``: alpha is dropped, EXIF orientation is
not applied).
"""
import io
import logging
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.logging import print_log
from PIL import Image

from mmqueryopt.registry import TRANSFORMS
from .round_cache import RoundCache


class BrokenImageError(OSError):
    """An image file exists but cannot be decoded."""


def decode_bgr(content: bytes) -> np.ndarray:
    """Decode image bytes to a BGR uint8 array of shape (H, W, 3).

    Args:
        content (bytes): The encoded image.

    Returns:
        np.ndarray: The image, in MMCV's channel order.
    """
    with Image.open(io.BytesIO(content)) as img:
        # convert() forces the full decode, so truncation raises here.
        rgb = np.asarray(img.convert('RGB'))
    return np.ascontiguousarray(rgb[..., ::-1])


@TRANSFORMS.register_module()
class LoadImageBGR(BaseTransform):
    """Load an image as BGR uint8 (H, W, 3), a drop-in ``LoadImageFromFile``.

    The output keeps MMCV's contract (``img`` in BGR order, ``img_shape`` and
    ``ori_shape``), so ``ClsDataPreprocessor(to_rgb=True)`` works unchanged.

    A missing file raises ``FileNotFoundError`` and an undecodable one
    :class:`BrokenImageError`; both name the image and, when the dataset
    provides it, the list line that named it (``list_line``).

    With ``cache_bytes`` set, decoded images are kept in a
    :class:`RoundCache` shared by the loader's workers and keyed by
    ``sample_idx``: an image is decoded once per round (the round hook
    clears the cache), later passes copy its pixels, which are the decoded
    ones bit for bit.

    Required keys: ``img_path`` (without it, an ``img`` decoded by the
    caller passes through unchanged). Optional: ``list_line``,
    ``sample_idx`` (needed by the cache).
    Added keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        skip_broken (bool): Return None for a missing or broken image instead
            of raising, and log it with the number skipped so far (counted
            per process, so per dataloader worker). MMEngine's dataset then
            draws another index in training; in ``test_mode`` it raises.
            Defaults to False.
        backend_args (dict, optional): Arguments of the file backend, as in
            ``LoadImageFromFile``. Defaults to None.
        cache_bytes (int, optional): Budget of the round cache in bytes per
            rank (an H x W image takes 3*H*W); None decodes every time.
            Needs workers started by fork. Defaults to None.
    """

    def __init__(self,
                 skip_broken: bool = False,
                 backend_args: Optional[dict] = None,
                 cache_bytes: Optional[int] = None) -> None:
        self.skip_broken = skip_broken
        self.backend_args = backend_args
        self.num_skipped = 0
        self.round_cache = (None if cache_bytes is None else RoundCache(
            cache_bytes))

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): A data info from the dataset.

        Returns:
            dict | None: ``results`` with the image, or None when the image
            is skipped.
        """
        if 'img_path' not in results and 'img' in results:
            # Decoded by the caller: MMPretrain's inferencers read the image
            # themselves and drop only a LoadImageFromFile from the pipeline.
            return results
        index = results.get('sample_idx')
        cached = (None if self.round_cache is None or index is None else
                  self.round_cache.get(index))
        if cached is not None:
            return self._set_image(results, cached)
        path = results['img_path']
        source = (f" (listed at {results['list_line']})"
                  if 'list_line' in results else '')
        try:
            content = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            return self._fail(FileNotFoundError(
                f'Image not found: {path}{source}'))
        try:
            img = decode_bgr(content)
        except Exception as err:  # PIL raises many types for corrupt data
            return self._fail(BrokenImageError(
                f'Cannot decode image {path}{source}: {err}'))
        if self.round_cache is not None and index is not None:
            self.round_cache.put(index, img)
        return self._set_image(results, img)

    @staticmethod
    def _set_image(results: dict, img: np.ndarray) -> dict:
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _fail(self, error: Exception) -> None:
        if not self.skip_broken:
            raise error
        self.num_skipped += 1
        print_log(
            f'{error}; skipped ({self.num_skipped} skipped so far in this '
            'process)',
            logger='current',
            level=logging.WARNING)
        return None

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(skip_broken={self.skip_broken}, '
                f'backend_args={self.backend_args}, '
                f'cache_bytes={getattr(self.round_cache, "max_bytes", None)})')
