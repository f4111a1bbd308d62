"""Search a gallery of binary codes: the codes file and the index.

* :class:`BinaryIndex`: exact top-k and radius Hamming search, ties ranked
  by gallery index as the metric ranks them; built from codes or codes files
  and saved as a codes file.
* :func:`save_codes` / :func:`load_codes`: the codes file (``.npz``: packed
  codes, ``nbits``, image paths, labels, JSON meta), written atomically and
  read without unpickling; :func:`check_same_model` refuses queries of
  another model.
* :func:`build_encoder`, :func:`encoder_from_args`, :func:`model_meta`,
  :func:`encode`, :func:`list_images`: a model from CONFIG + CHECKPOINT that
  encodes a dataloader or a folder of images (``tools/encode.py``,
  ``tools/search.py``).
* :func:`save_grid`: one query's results as a PNG grid.
"""
from .codes_file import (MODEL_KEYS, Codes, CodesFileError, check_same_model,
                         file_sha256, load_codes, save_codes)
from .encoder import (IMAGE_EXTENSIONS, ImageListDataset, add_encoder_args,
                      build_encoder, encode, encoder_from_args, list_images,
                      model_meta)
from .grid import grid_size, save_grid
from .index import BinaryIndex, pack_codes

__all__ = [
    'BinaryIndex', 'Codes', 'CodesFileError', 'MODEL_KEYS', 'check_same_model',
    'file_sha256', 'load_codes', 'pack_codes', 'save_codes',
    'IMAGE_EXTENSIONS', 'ImageListDataset', 'add_encoder_args',
    'build_encoder', 'encode', 'encoder_from_args', 'list_images',
    'model_meta', 'grid_size', 'save_grid'
]
