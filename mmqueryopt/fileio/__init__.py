"""The bottom layer's file I/O: atomic writes, safe checkpoint loading, codes
files.

* :func:`atomic_write` / :func:`remove_stale_temp_files`: a file appears
  whole or not at all (:class:`AtomicLocalBackend` does it for MMEngine's
  checkpoint saving).
* :func:`load_checkpoint_file`: unpickles a checkpoint without running code
  from it; every unusable file is one :class:`CheckpointFileError`.
* :func:`save_codes` / :func:`read_codes_file`: the codes file (binary
  codes with paths, labels, relaxed codes and meta; older layouts read).
"""
from .atomic import atomic_write, remove_stale_temp_files
from .backend import ATOMIC_BACKEND, AtomicLocalBackend
from .checkpoint import (CheckpointFileError, load_checkpoint_file,
                         load_from_local, strip_ddp_prefix)
from .codes_file import (FORMAT_VERSION, MODEL_KEYS, Codes, CodesFile,
                         CodesFileError, check_same_model, file_sha256,
                         load_codes, read_codes_file, read_labels, save_codes)

__all__ = [
    'atomic_write', 'remove_stale_temp_files', 'ATOMIC_BACKEND',
    'AtomicLocalBackend', 'CheckpointFileError', 'load_checkpoint_file',
    'load_from_local', 'strip_ddp_prefix', 'FORMAT_VERSION', 'MODEL_KEYS', 'Codes', 'CodesFile',
    'CodesFileError', 'check_same_model', 'file_sha256', 'load_codes',
    'read_codes_file', 'read_labels', 'save_codes'
]
