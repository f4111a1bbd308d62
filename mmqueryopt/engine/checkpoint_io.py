"""Reading checkpoint files safely and writing them atomically.

Reading: :func:`load_checkpoint_file` is the one loader for every checkpoint
that comes from outside (``tools/test.py``, ``load_from``, ``--resume``, the
converter). It unpickles with ``weights_only=True`` (tensors, plain data and
the types allow-listed in :mod:`.safe_globals`), so a crafted file runs no
code, and it turns every way an existing file can be unusable (a directory,
empty, truncated, damaged, not a checkpoint, refused pickle) into one
:class:`CheckpointFileError` that names the file and the cause (a missing
file stays a ``FileNotFoundError``, as in MMEngine). Importing
this module makes it MMEngine's loader for local paths, so the Runner, its
``resume`` and ``mmengine.runner.load_checkpoint`` use it too.

Writing: :class:`AtomicLocalBackend` routes MMEngine's checkpoint saving
through :func:`mmqueryopt.fileio.atomic_write`, so a reader (or a process
killed mid-write) sees either the old file or the new one, never a part.
"""
import errno
import logging
import os
import os.path as osp
import pickle
import re
import zipfile
import zlib
from typing import Any, Iterable, List, Optional, Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from mmqueryopt.fileio import atomic_write

# torch.save's archive starts with a zip local file header; its legacy
# format and plain pickles start with the pickle PROTO opcode.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'
# The name AtomicLocalBackend is registered under, for backend_args.
ATOMIC_BACKEND = 'atomic_local'
_NUMBERED = re.compile(r'^(?P<stem>.*?)(?P<number>\d+)\.pth$')
# What Runner.resume reads unconditionally.
_RESUME_KEYS = ('meta', 'state_dict', 'message_hub')


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
            this call only (e.g. ``argparse.Namespace``).

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
        with torch.serialization.safe_globals(list(extra_safe_globals)):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except MemoryError:
        raise  # says nothing about the file
    except Exception as err:
        raise _load_error(path, size, err, unsafe_pickle) from None


def load_resumable_checkpoint(path: str, map_location: Any = 'cpu') -> dict:
    """Load a training checkpoint that ``Runner.resume`` can continue from.

    Args:
        path (str): The file.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint, with ``meta`` (``epoch``, ``iter``),
        ``state_dict`` and ``message_hub``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: It cannot be loaded, or is not a training
            checkpoint (e.g. converted weights: start from those with
            ``load_from`` instead).
    """
    checkpoint = load_checkpoint_file(path, map_location)
    missing = [key for key in _RESUME_KEYS
               if not isinstance(checkpoint, dict) or key not in checkpoint]
    if not missing:
        missing = [f'meta.{key}' for key in ('epoch', 'iter')
                   if key not in checkpoint['meta']]
    if missing:
        raise CheckpointFileError(
            path, 'not_resumable',
            f'is not a training checkpoint to resume from: it has no '
            f'{", ".join(missing)} (to start from its weights, use '
            f'load_from instead)')
    return checkpoint


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a ``--resume`` without a path continues from.

    That is the one ``last_checkpoint`` names, as in MMEngine, unless it is
    damaged: then, with a warning naming it, the newest intact older one of
    the same name pattern (``epoch_3.pth`` -> ``epoch_2.pth``, ...). Older
    only: a higher number left over from an earlier run in the same work
    dir is not this run's. Each candidate is verified by loading it whole
    (:func:`load_resumable_checkpoint`): that is what resuming reads anyway,
    and it is the one check that also covers damaged records, refused
    pickles and missing keys, not only a truncated end.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str or None: The checkpoint's path, or None when the work dir has no
        ``last_checkpoint`` (nothing to resume: train from the start).

    Raises:
        CheckpointFileError: Every candidate is damaged; the message lists
            each with its cause.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        latest = f.read().strip()
    candidates = _older_checkpoints(latest, work_dir)
    if latest:
        candidates.insert(0, latest)
    problems = []
    for path in candidates:
        try:
            load_resumable_checkpoint(path)
        except (CheckpointFileError, FileNotFoundError) as err:
            print_log(f'Not resuming from a damaged checkpoint: {err}',
                      logger='current', level=logging.WARNING)
            problems.append(str(err))
            continue
        if problems:
            print_log(f'Resuming from {path}, the newest intact checkpoint',
                      logger='current', level=logging.WARNING)
        return path
    named = f'names {latest!r}' if latest else 'is empty'
    raise CheckpointFileError(
        record, 'damaged',
        f'{named}, and no intact checkpoint was found to resume from: '
        + ('; '.join(problems) or 'there is none')
        + '. Remove the damaged files (or the work dir) to train from the '
        'start.')


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic :meth:`put`.

    ``Runner.save_checkpoint`` ends in ``file_backend.put(bytes, path)``;
    selecting this backend (``backend_args=dict(backend=ATOMIC_BACKEND)``)
    makes every checkpoint it writes appear whole or not at all.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write ``obj`` to ``filepath`` through :func:`atomic_write`.

        Args:
            obj (bytes): Data to write.
            filepath (str or PathLike): Where.
        """
        atomic_write(str(filepath), obj)


# MMEngine's own local loader calls torch.load bare, whose errors name
# neither the file nor the cause (a truncated file ends in "OSError: [Errno
# 22] Invalid argument"). Its scheme registry is the one place every local
# load passes (Runner.load_checkpoint and resume, load_checkpoint, init_cfg
# 'Pretrained'); a Runner subclass would miss the last two.
@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local_safely(filename: str, map_location: Any) -> Any:
    """MMEngine's loader for local paths: :func:`load_checkpoint_file`.

    Args:
        filename (str): The file.
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded checkpoint.
    """
    return load_checkpoint_file(filename, map_location)


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


def _older_checkpoints(latest: str, work_dir: str) -> List[str]:
    """Checkpoints to fall back on, newest first: those named like
    ``latest`` with a lower number; with no ``latest`` (an empty
    ``last_checkpoint``), every ``epoch_N.pth`` and ``iter_N.pth`` of
    ``work_dir`` (best checkpoints hold no optimizer state)."""
    if latest:
        match = _NUMBERED.match(osp.basename(latest))
        if match is None:
            return []
        folder, stems = osp.dirname(latest), (match['stem'], )
        below = int(match['number'])
    else:
        folder, stems, below = work_dir, ('epoch_', 'iter_'), None
    found = []
    for name in os.listdir(folder) if osp.isdir(folder) else []:
        match = _NUMBERED.match(name)
        if match and match['stem'] in stems and (
                below is None or int(match['number']) < below):
            found.append((int(match['number']), osp.join(folder, name)))
    return [path for _, path in sorted(found, reverse=True)]
