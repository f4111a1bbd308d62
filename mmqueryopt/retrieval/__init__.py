"""Search a gallery of binary codes: the codes file and the index.

* :class:`BinaryIndex`: exact top-k and radius Hamming search, ties ranked
  by gallery index as the metric ranks them; built from codes or codes files
  and saved as a codes file.
* :func:`save_codes` / :func:`read_codes_file`: the codes file (``.npz``:
  ``format_version``, packed codes, ``nbits``, image paths, labels, relaxed
  codes, JSON meta; one set or query and database sides), written
  atomically and read without unpickling, older layouts included;
  :func:`load_codes` reads a gallery; :func:`check_same_model` refuses
  queries of another model.
* :func:`build_encoder`, :func:`model_meta`,
  :func:`encode`, :func:`list_images`: a model from CONFIG + CHECKPOINT that
  encodes a dataloader or a folder of images (``tools/encode.py``,
  ``tools/search.py``).
* :func:`save_grid`: one query's results as a PNG grid.
* :class:`MilvusIndex`: the same search over a Milvus collection (a Milvus
  Lite file or a server; the optional ``.[milvus]`` extra, imported only
  when used).
"""
from mmqueryopt.fileio import (FORMAT_VERSION, MODEL_KEYS, Codes, CodesFile,
                               CodesFileError, check_same_model, file_sha256,
                               load_codes, read_codes_file, read_labels,
                               save_codes)
from .encoder import (IMAGE_EXTENSIONS, ImageListDataset, build_encoder,
                      encode, list_images,
                      model_meta)
from .grid import grid_size, save_grid
from mmqueryopt.evaluation.functional.codes import pack_codes
from .index import BinaryIndex
from .milvus_index import MilvusIndex, MilvusIndexError

__all__ = [
    'BinaryIndex', 'Codes', 'CodesFile', 'CodesFileError', 'FORMAT_VERSION',
    'MODEL_KEYS', 'check_same_model', 'file_sha256', 'load_codes',
    'pack_codes', 'read_codes_file', 'read_labels', 'save_codes',
    'IMAGE_EXTENSIONS', 'ImageListDataset', 'build_encoder', 'encode',
    'list_images',
    'model_meta', 'grid_size', 'save_grid', 'MilvusIndex', 'MilvusIndexError'
]
