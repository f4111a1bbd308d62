"""Codes and Hamming search with a trained model, in a few lines."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from mmqueryopt.models.prototype import check_prototype_images
from mmqueryopt.retrieval import (BinaryIndex, ImageListDataset,
                                  build_encoder, check_same_model, encode,
                                  list_images, model_meta)

Images = Union[str, Sequence[str]]


def model_config(model: str) -> Config:
    """The config of a model name (our model index) or a config file.

    Args:
        model (str): A name of ``mmpretrain.list_models(task='Image
            Retrieval')`` or a ``.py`` config file.

    Returns:
        Config: A copy (the hub's stays as it is).

    Raises:
        FileNotFoundError: A ``.py`` file that does not exist.
        ValueError: Neither a config file nor a known model name.
    """
    if model.endswith('.py'):
        if not osp.isfile(model):
            raise FileNotFoundError(f'config file not found: {model}')
        return Config.fromfile(model)
    from mmpretrain.apis import ModelHub
    if not ModelHub.has(model):
        raise ValueError(
            f'{model!r} is neither a config file (.py) nor a model name of '
            f"mmpretrain.list_models(task='Image Retrieval')")
    return ModelHub.get(model).config.copy()


class HashSearcher:
    """A trained hashing model for codes and exact Hamming search.

    Args:
        model (str): A model name (``mmpretrain.list_models(task='Image
            Retrieval')``, e.g. ``'queryopt_resnet18-cifar_1xb16_digits-
            12bit'``) or a config file.
        checkpoint (str): Its trained weights (read with the safe loader;
            one of another configuration is refused).
        device (str, optional): Where the model runs. Defaults to CUDA
            when available, else the CPU.
        batch_size (int): Images encoded per batch. Defaults to 32.

    Example::

        searcher = HashSearcher('queryopt_resnet18-cifar_1xb16_digits-12bit',
                                'epoch_50.pth')
        searcher.build_index('gallery/')
        searcher.search('query.png', topk=5)[0]
        # [{'rank': 1, 'distance': 0, 'index': 7, 'path': '/.../a.png'}, ...]
    """

    def __init__(self,
                 model: str,
                 checkpoint: str,
                 device: Optional[str] = None,
                 batch_size: int = 32):
        cfg = model_config(model)
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        self.model = build_encoder(cfg, checkpoint, device)
        self.model.checkpoint_file = osp.abspath(checkpoint)
        #: The meta its codes files record (model, code length, weights).
        self.meta = model_meta(self.model, checkpoint,
                               cfg.filename or f'{model}.py')
        self.pipeline = cfg.test_dataloader.dataset.pipeline
        self.batch_size = batch_size
        #: The gallery :meth:`search` ranks, set by :meth:`build_index`.
        self.index: Optional[BinaryIndex] = None

    @property
    def code_length(self) -> int:
        """Bits per code."""
        return self.model.code_length

    def codes(self, images: Images) -> np.ndarray:
        """The binary codes of images.

        Args:
            images (str | Sequence[str]): An image file or several.

        Returns:
            np.ndarray: (N, code_length) int8 in {-1, +1} (sign with ties
            to +1), one row per image in the given order.

        Raises:
            FileNotFoundError, BrokenImageError: An image is missing or
                cannot be decoded (named), found before any encoding.
        """
        paths = [images] if isinstance(images, str) else list(images)
        dataset = ImageListDataset([osp.abspath(p) for p in paths],
                                   self.pipeline)
        check_prototype_images(dataset)
        loader = DataLoader(dataset, batch_size=self.batch_size,
                            collate_fn=pseudo_collate)
        codes, _, _ = encode(self.model, loader, progress=False)
        return codes

    def build_index(self, gallery: Images) -> BinaryIndex:
        """Set the gallery that :meth:`search` ranks.

        Args:
            gallery (str | Sequence[str]): A folder (its images,
                recursively, in sorted order), a list of image files, or a
                codes file of this model (``tools/encode.py``,
                :meth:`BinaryIndex.save`, the inferencer's
                ``prototype_cache``).

        Returns:
            BinaryIndex: The index (:attr:`index`); ``index.save(path)``
            writes it as a codes file.

        Raises:
            ValueError: A folder without images, or a codes file of another
                model, code length or checkpoint.
        """
        if isinstance(gallery, str) and gallery.endswith('.npz'):
            index = BinaryIndex.load(gallery)
            check_same_model(index.meta, self.meta, repr(gallery))
        else:
            paths = (list_images(gallery) if isinstance(gallery, str) else
                     [osp.abspath(p) for p in gallery])
            index = BinaryIndex.from_codes(
                self.codes(paths), paths=paths, meta=self.meta)
        self.index = index
        return index

    def search(self, images: Images, topk: int = 10) -> List[List[dict]]:
        """The nearest gallery images of each query image.

        Args:
            images (str | Sequence[str]): Query image files.
            topk (int): Results per query (clamped to the gallery's size).

        Returns:
            list[list[dict]]: Per query, ``topk`` dicts ``rank`` (from 1),
            ``distance`` (Hamming), ``index`` (gallery position) and
            ``path``, ranked by (distance, index) as ``tools/search.py``.

        Raises:
            RuntimeError: No gallery yet (call :meth:`build_index`).
        """
        if self.index is None:
            raise RuntimeError('no gallery: call build_index(folder, list '
                               'of images or codes file) first')
        codes = self.codes(images)
        topk = min(topk, len(self.index))
        indices, distances = self.index.search(codes, topk)
        return [[
            dict(rank=rank, distance=int(d), index=int(i),
                 path=str(self.index.paths[i]))
            for rank, (i, d) in enumerate(zip(row, row_distances), 1)
        ] for row, row_distances in zip(indices, distances)]
