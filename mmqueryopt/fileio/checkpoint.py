"""Reading checkpoint files safely.

:func:`load_checkpoint_file` is the one loader for every checkpoint that
comes from outside (``tools/test.py``, ``load_from``, ``--resume``, the
converter; MMEngine's own local loads once
:func:`mmqueryopt.compat.route_local_checkpoint_loading` is applied). It
unpickles with ``weights_only=True``, allowing tensors, plain data and, for
this call only, the types MMEngine checkpoints hold
(:func:`mmqueryopt.compat.mmengine_checkpoint_globals`), so a crafted file
runs no code; and it turns every way an existing file can be unusable (a
directory, empty, truncated, damaged, not a checkpoint, refused pickle)
into one :class:`CheckpointFileError` that names the file and the cause (a
missing file stays a ``FileNotFoundError``, as in MMEngine).
"""
import errno
import os.path as osp
import pickle
import zipfile
import zlib
from typing import Any, Iterable, Optional

import torch

from mmqueryopt.compat import mmengine_checkpoint_globals

# torch.save's archive starts with a zip local file header; its legacy
# format and plain pickles start with the pickle PROTO opcode.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be used.

    Args:
        path (str): The file.
        reason (str): What is wrong, one word for programs:
            ``'not_a_file'``, ``'empty'``, ``'truncated'``, ``'damaged'``,
            ``'not_a_checkpoint'``, ``'unsafe_pickle'``,
            ``'not_importable'``, ``'unreadable'`` or ``'not_resumable'``.
        detail (str): The cause in words, for people.
    """

    def __init__(self, path: str, reason: str, detail: str):
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f'checkpoint {path!r} {detail}')


def load_checkpoint_file(path: str,
                         map_location: Any = 'cpu',
                         *,
                         unsafe_pickle: bool = False,
                         extra_safe_globals: Iterable = ()) -> Any:
    """Load a ``torch.save`` file without running code from it.

    Zip archives (torch's format) are first read whole with their CRC-32
    checks, which catches a truncated or bit-flipped file that
    ``torch.load`` would read into silently wrong tensors.

    Args:
        path (str): The file.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.
        unsafe_pickle (bool): Unpickle with Python's full unpickler
            (``weights_only=False``): a crafted file then runs any code it
            names. Only for a file whose source is trusted. Defaults to
            False.
        extra_safe_globals (Iterable): Further classes to allow-list for
            this call (e.g. ``argparse.Namespace``), beside those of
            MMEngine checkpoints.

    Returns:
        The unpickled object (a dict for every checkpoint MMEngine writes).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: It exists but cannot be loaded; the message
            names the file and the cause.
    """
    path = osp.expanduser(path)
    if not osp.exists(path):
        raise FileNotFoundError(errno.ENOENT, 'no such checkpoint file', path)
    if not osp.isfile(path):
        raise CheckpointFileError(path, 'not_a_file',
                                  'is not a file (a directory?)')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointFileError(
            path, 'empty', 'is empty (0 bytes): its save never wrote data')
    with open(path, 'rb') as f:
        head = f.read(len(_ZIP_MAGIC))
    if head == _ZIP_MAGIC:
        _check_archive(path, size)
    elif not head.startswith(_PICKLE_PROTO):
        raise CheckpointFileError(
            path, 'not_a_checkpoint',
            f'is not a checkpoint: torch.save writes a zip archive (or, '
            f'before torch 1.6, a pickle), but the file starts with {head!r}')
    try:
        if unsafe_pickle:
            return torch.load(path, map_location=map_location,
                              weights_only=False)
        with torch.serialization.safe_globals(
                [*mmengine_checkpoint_globals(), *extra_safe_globals]):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except MemoryError:
        raise  # says nothing about the file
    except Exception as err:
        raise _load_error(path, size, err, unsafe_pickle) from None


def _check_archive(path: str, size: int) -> None:
    """Read every record of a zip archive, checking its CRC-32."""
    try:
        with zipfile.ZipFile(path) as archive:
            for record in archive.infolist():
                # torch.save with set_crc32_options(False) stores 0.
                if record.CRC == 0:
                    continue
                with archive.open(record) as stream:
                    while stream.read(1 << 24):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error,
            NotImplementedError) as err:
        raise _damaged(path, size, err) from None


def _load_error(path: str, size: int, err: Exception,
                unsafe_pickle: bool) -> CheckpointFileError:
    """The error for a file that ``torch.load`` could not read."""
    refusal = _weights_only_refusal(err) if not unsafe_pickle else None
    if refusal is not None:
        return CheckpointFileError(
            path, 'unsafe_pickle',
            'was refused by the safe unpickler (weights_only=True), which '
            'reads only tensors and plain data; unpickling it fully could '
            f'run code ({refusal})')
    if isinstance(err, (ImportError, AttributeError)) and unsafe_pickle:
        # Only the full unpickler imports the classes a file names.
        return CheckpointFileError(
            path, 'not_importable',
            f'pickles objects of code that is not importable here: {err}')
    if isinstance(err, (EOFError, OSError, pickle.UnpicklingError)) or (
            isinstance(err, RuntimeError) and any(
                word in str(err)
                for word in ('PytorchStreamReader', 'EOF', 'corrupt'))):
        return _damaged(path, size, err)
    # Not a sign of damage (e.g. a map_location naming a missing device):
    # keep torch's words, add the file.
    return CheckpointFileError(path, 'unreadable',
                               f'could not be loaded: {_describe(err)}')


def _damaged(path: str, size: int, err: BaseException) -> CheckpointFileError:
    """The error for a file whose bytes are not a complete checkpoint."""
    cause = _describe(err)
    if isinstance(err, zipfile.BadZipFile) and 'CRC' not in cause:
        return CheckpointFileError(
            path, 'truncated',
            f'is truncated or damaged ({size} bytes): it starts as a '
            f'torch.save archive but its end (the zip directory) is missing '
            f'or unreadable, as when a save or copy stops early ({cause})')
    return CheckpointFileError(
        path, 'damaged',
        f'is damaged ({size} bytes) and cannot be read whole ({cause})')


def _describe(err: BaseException) -> str:
    """An error's type and the first line of its message (torch's run to
    pages)."""
    message = str(err).strip().split('\n')[0]
    return f'{type(err).__name__}: {message}' if message else type(
        err).__name__


def _weights_only_refusal(err: Exception) -> Optional[str]:
    """The line of torch's long weights-only message that says what the
    file asked for, or None when ``err`` is no such refusal."""
    if not isinstance(err, pickle.UnpicklingError):
        return None
    for line in str(err).splitlines():
        if 'GLOBAL' in line or 'Unsupported' in line:
            return line.strip().removeprefix('WeightsUnpickler error: ')
    return None


def strip_ddp_prefix(key: str) -> str:
    """A state dict key without the ``module.`` that a model saved from
    inside a DDP (or DataParallel) wrapper has.

    Args:
        key (str): A state dict key.

    Returns:
        str: The key the unwrapped model has.
    """
    return key.removeprefix('module.')


def load_from_local(filename: str, map_location: Any) -> Any:
    """:func:`load_checkpoint_file` with the signature (and the name, which
    MMEngine logs) of MMEngine's local checkpoint loader, for
    :func:`mmqueryopt.compat.route_local_checkpoint_loading`.

    Args:
        filename (str): The file.
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded checkpoint.
    """
    return load_checkpoint_file(filename, map_location)
