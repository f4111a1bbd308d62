"""What the demo page does, without the page: a gallery folder's codes, one
image's nearest gallery images, its code and its bit-attention overlay.

Everything here reuses the toolbox: the encoder and its loop
(:mod:`mmqueryopt.retrieval.encoder`), the exact index
(:class:`~mmqueryopt.retrieval.BinaryIndex`, ties in gallery order), the
codes file and its model check, and the attention overlay of
``tools/visualize_attention.py``. ``retrieval_demo.py`` puts a Gradio page
on top; the tests drive this module directly.
"""
import os.path as osp
from typing import List, NamedTuple, Optional

import numpy as np
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from mmqueryopt.analysis.attention import (map_titles, model_input_image,
                                           save_attention_overlay)
from mmqueryopt.retrieval import (BinaryIndex, ImageListDataset,
                                  check_same_model, encode, list_images,
                                  model_meta)
from visualize_attention import attention_of


class Neighbour(NamedTuple):
    """One search result.

    Attributes:
        rank (int): 1 for the nearest.
        distance (int): Hamming distance to the query.
        index (int): Row in the gallery (its sorted image order).
        path (str): Absolute image path.
        name (str): The path relative to the gallery folder (its class
            folder, when the gallery has them, then the file).
    """
    rank: int
    distance: int
    index: int
    path: str
    name: str


class GallerySearch:
    """A model and the codes of every image under a gallery folder.

    Args:
        cfg (mmengine.Config): The model's config (its test pipeline reads
            the images).
        model: The encoder in eval mode
            (:func:`~mmqueryopt.retrieval.build_encoder`).
        checkpoint (str): Its checkpoint file (identifies it in codes
            files).
        gallery (str): The gallery folder, searched recursively
            (:func:`~mmqueryopt.retrieval.list_images`).
        codes (str, optional): A codes file of the gallery. When it exists
            it is loaded instead of encoding, and refused unless this model
            encoded exactly the gallery's images; when it does not exist
            the gallery is encoded and the file written (atomically).
            Defaults to None (encode, write nothing).

    Raises:
        NotADirectoryError / ValueError: The gallery is not a folder or
            holds no image.
        BrokenImageError / FileNotFoundError: A gallery image cannot be
            read; the message names it.
        CodesFileError / ValueError: ``codes`` is not a codes file, or
            another model's, or of other images.
    """

    def __init__(self, cfg, model, checkpoint: str, gallery: str,
                 codes: Optional[str] = None):
        self.model = model
        self.gallery = osp.abspath(gallery)
        self.pipeline = cfg.test_dataloader.dataset.pipeline
        self.batch_size = cfg.test_dataloader.get('batch_size', 32)
        paths = list_images(gallery)
        meta = model_meta(model, checkpoint)
        if codes is not None and osp.exists(codes):
            self.index = self._load(codes, meta, paths)
        else:
            self.index = BinaryIndex.from_codes(
                self.encode(paths), paths=paths, meta=meta)
            if codes is not None:
                self.index.save(codes)
        self.paths = [str(p) for p in self.index.paths]
        self.to_rgb = bool(
            getattr(model.data_preprocessor, 'to_rgb', False))
        self.no_attention = self._probe_attention()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def nbits(self) -> int:
        """The code length."""
        return self.index.nbits

    def _load(self, codes: str, meta: dict, paths: List[str]) -> BinaryIndex:
        """The codes file, checked against the model and the gallery."""
        index = BinaryIndex.load(codes)
        check_same_model(index.meta, meta, repr(codes))
        held = [str(p) for p in index.paths]
        if held != paths:
            first = next((i for i, (a, b) in enumerate(zip(held, paths))
                          if a != b), min(len(held), len(paths)))
            detail = (f'image {first} is {held[first]!r} there but '
                      f'{paths[first]!r} here' if first < min(
                          len(held), len(paths)) else
                      f'{len(held)} images there, {len(paths)} here')
            raise ValueError(
                f'codes file {codes!r} does not encode the images of '
                f'{self.gallery!r} ({detail}); delete it to re-encode')
        return index

    def encode(self, paths: List[str]) -> np.ndarray:
        """Codes of image files, as ``tools/encode.py`` computes them.

        Args:
            paths (list[str]): Image files.

        Returns:
            np.ndarray: (N, nbits) int8 in {-1, +1}.
        """
        # One process: a decoding error surfaces as itself, naming the file.
        loader = DataLoader(ImageListDataset(paths, self.pipeline),
                            batch_size=self.batch_size,
                            collate_fn=pseudo_collate)
        codes, _, _ = encode(self.model, loader, progress=False)
        return codes

    def search(self, image: str, topk: int):
        """The code of an image and its ``topk`` nearest gallery images.

        Args:
            image (str): The query image file.
            topk (int): Results wanted (at most the gallery size).

        Returns:
            tuple: ``(code, neighbours)``: (nbits,) int8 in {-1, +1} and a
            list of :class:`Neighbour` ranked by (distance, gallery order).
        """
        code = self.encode([osp.abspath(image)])
        indices, distances = self.index.search(code, min(topk, len(self)))
        neighbours = [
            Neighbour(rank, int(d), int(i), self.paths[i],
                      osp.relpath(self.paths[i], self.gallery))
            for rank, (i, d) in enumerate(zip(indices[0], distances[0]), 1)
        ]
        return code[0], neighbours

    def _probe_attention(self) -> Optional[str]:
        """None when the model draws attention maps, else why not."""
        try:
            self._maps(self.paths[0])
        except ValueError as error:
            return str(error)
        return None

    def _maps(self, image: str):
        packed = ImageListDataset([image], self.pipeline)[0]
        maps, relaxed = attention_of(self.model, pseudo_collate([packed]))
        return packed, maps[0].cpu().numpy(), relaxed[0].tolist()

    def draw_attention(self, image: str, out_file: str,
                       thumb_size: int = 112, ncols: int = 7) -> bool:
        """Write the image and each of its attention maps as a heatmap over
        it (``tools/visualize_attention.py``'s figure) to ``out_file``.

        Args:
            image (str): The image file.
            out_file (str): The PNG to write.
            thumb_size (int): Cell side in pixels. Defaults to 112.
            ncols (int): Cells per row. Defaults to 7.

        Returns:
            bool: False (nothing written) when the model has no attention
            maps (:attr:`no_attention` says why).
        """
        if self.no_attention is not None:
            return False
        packed, maps, relaxed = self._maps(osp.abspath(image))
        titles = map_titles(len(maps), self.model.code_length,
                            range(len(maps)), relaxed)
        save_attention_overlay(out_file,
                               model_input_image(packed['inputs'],
                                                 self.to_rgb), maps, titles,
                               thumb_size, ncols)
        return True


def bit_string(code: np.ndarray) -> str:
    """A code as ``'1'`` (+1) and ``'0'`` (-1), bit 0 first, in groups of 8.

    Args:
        code (np.ndarray): (nbits,) in {-1, +1}.

    Returns:
        str: E.g. ``'10110010 0111'``.
    """
    bits = ''.join('1' if v > 0 else '0' for v in code)
    return ' '.join(bits[i:i + 8] for i in range(0, len(bits), 8))
