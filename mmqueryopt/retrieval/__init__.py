"""Search a gallery of binary codes: the codes file and the index.

* :class:`BinaryIndex`: exact top-k and radius Hamming search, ties ranked
  by gallery index as the metric ranks them; built from codes or codes files
  and saved as a codes file.
* :func:`save_codes` / :func:`load_codes`: the codes file (``.npz``: packed
  codes, ``nbits``, image paths, labels, JSON meta), written atomically and
  read without unpickling; :func:`check_same_model` refuses queries of
  another model.
"""
from .codes_file import (MODEL_KEYS, Codes, CodesFileError, check_same_model,
                         file_sha256, load_codes, save_codes)
from .index import BinaryIndex, pack_codes

__all__ = [
    'BinaryIndex', 'Codes', 'CodesFileError', 'MODEL_KEYS', 'check_same_model',
    'file_sha256', 'load_codes', 'pack_codes', 'save_codes'
]
