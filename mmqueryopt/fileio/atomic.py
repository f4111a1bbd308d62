"""Writing files atomically: whole or not at all.

Stdlib only: every writer of the package (checkpoints, codes files, metric
dumps, tool outputs) uses it.
"""
import os
import os.path as osp
import re
import secrets
from typing import List

# .<target name>.<pid>-<random>.tmp, hidden beside the target.
_TEMP_NAME = re.compile(r'^\..+\.\d+-[0-9a-f]{8}\.tmp$')


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that no reader sees a partial file.

    The data goes to a hidden temporary file in the same folder (a rename
    is atomic only within one file system), is flushed and fsynced, and is
    renamed over ``path``; the folder is fsynced so the rename survives a
    power cut. On any error the temporary file is removed; a process killed
    outright leaves it behind, and :func:`remove_stale_temp_files` clears
    it at the next start.

    Args:
        path (str): The file to write.
        data (bytes): Its new content.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}-'
                    f'{secrets.token_hex(4)}.tmp')
    # os.open with 0o666 keeps the umask's permissions (mkstemp's are 0600).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if osp.exists(temp):
            os.remove(temp)
        raise
    _fsync_folder(folder)


def remove_stale_temp_files(folder: str) -> List[str]:
    """Remove what :func:`atomic_write` left behind in ``folder`` when its
    process was killed; call only when no write to ``folder`` is under way.

    Args:
        folder (str): The folder.

    Returns:
        list[str]: The removed files.
    """
    if not osp.isdir(folder):
        return []
    stale = [osp.join(folder, name) for name in sorted(os.listdir(folder))
             if _TEMP_NAME.match(name)]
    for path in stale:
        os.remove(path)
    return stale


def _fsync_folder(folder: str) -> None:
    """Persist a rename in ``folder``."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        # Some file systems (and platforms) cannot fsync a directory; the
        # rename is still atomic, only its durability is the OS's.
        pass
    finally:
        os.close(fd)
