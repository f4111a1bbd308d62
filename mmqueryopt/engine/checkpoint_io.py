"""Which checkpoint a run resumes from, checked before the Runner reads it.

:func:`find_resumable_checkpoint` picks the checkpoint of ``--resume``
without a path (skipping damaged ones); :func:`load_resumable_checkpoint`
loads one through :func:`mmqueryopt.fileio.load_checkpoint_file` and checks
that it holds what ``Runner.resume`` reads.
"""
import logging
import os
import os.path as osp
import re
from typing import Any, List, Optional

from mmengine.logging import print_log

from mmqueryopt.fileio import CheckpointFileError, load_checkpoint_file

_NUMBERED = re.compile(r'^(?P<stem>.*?)(?P<number>\d+)\.pth$')
# What Runner.resume reads unconditionally.
_RESUME_KEYS = ('meta', 'state_dict', 'message_hub')


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
