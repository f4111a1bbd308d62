"""Finding the listed images that training would fail to load, up front.

A dataset checks its images when it loads its list (see
:func:`check_listed_images`), so that a missing, empty, truncated or foreign
file stops a run before the first round rather than in its first batch or
after a round's work. The check reads a JPEG's or PNG's header and end,
which catches what an interrupted download or extraction leaves behind, in
about a tenth of a millisecond (a full decode of a 500x375 JPEG takes ~5 ms);
other formats, and files that fail it, are decoded in full the way
:class:`LoadImageBGR` does, so nothing the loader accepts is reported. A file
damaged only in its middle passes; ``tools/check_dataset.py`` decodes every
image to find those too.

Results are cached by (path, size, mtime) in memory and in a file per data
root under :func:`cache_dir`, so a second start (or the runner's build after
:func:`~mmqueryopt.datasets.check_data`) checks nothing again.
"""
import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
import os.path as osp
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from PIL import Image, UnidentifiedImageError

from mmqueryopt.fileio import atomic_write
from .errors import DatasetError
from .loading import decode_bgr

#: What a JPEG (end of image) and a PNG (IEND chunk) end with.
_ENDS = {'JPEG': b'\xff\xd9', 'PNG': b'IEND\xaeB`\x82'}
#: Bytes read from a file's end; some writers pad the end with zeros.
_TAIL_BYTES = 64
#: Fewer files than this are checked in this process: a pool's start
#: costs more than it saves.
PARALLEL_MIN_FILES = 512
#: Broken files named in a message; the rest go to a file.
NAMED_IN_MESSAGE = 5
_CACHE_VERSION = 1
# (size, mtime_ns, problem) by absolute path: this process's results.
_checked: Dict[str, Tuple[int, int, Optional[str]]] = {}


def image_problem(path: str, full: bool = False) -> Optional[str]:
    """Say why the loader would fail on an image, if it would.

    Args:
        path (str): The image file.
        full (bool): Decode every image in full instead of reading the
            header and end of JPEGs and PNGs. Defaults to False.

    Returns:
        str | None: None if the image is fine, else a short reason
        (``'missing'``, ``'empty file'``, ``'cannot be decoded: ...'``).
    """
    try:
        size = osp.getsize(path)
    except FileNotFoundError:
        return 'missing'
    except OSError as err:
        return f'unreadable: {err.strerror}'
    if size == 0:
        return 'empty file'
    if not full and _header_and_end_ok(path, size):
        return None
    try:
        with open(path, 'rb') as f:
            decode_bgr(f.read())
    except UnidentifiedImageError:
        return 'not an image file'
    except Exception as err:  # PIL raises many types for corrupt data
        return f'cannot be decoded: {err}'
    return None


def _header_and_end_ok(path: str, size: int) -> bool:
    """Whether a JPEG or PNG has a readable header and its end marker."""
    try:
        with open(path, 'rb') as f:
            with Image.open(f) as img:
                end = _ENDS.get(img.format)
                width, height = img.size
            if end is None or width * height == 0:
                return False
            f.seek(max(0, size - _TAIL_BYTES))
            return f.read().rstrip(b'\0').endswith(end)
    except Exception:  # not an image PIL knows: decide by a full decode
        return False


def cache_dir() -> str:
    """str: Where results are cached: ``$MMQUERYOPT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mmqueryopt``, else ``~/.cache/mmqueryopt``."""
    if os.environ.get('MMQUERYOPT_CACHE_DIR'):
        return os.environ['MMQUERYOPT_CACHE_DIR']
    base = os.environ.get('XDG_CACHE_HOME') or osp.join(
        osp.expanduser('~'), '.cache')
    return osp.join(base, 'mmqueryopt')


def cache_file(data_root: str) -> str:
    """The cache file of a data root.

    Args:
        data_root (str): The dataset's root folder.

    Returns:
        str: ``<cache_dir>/image_check/<hash of the absolute root>.json``.
    """
    root = osp.abspath(data_root)
    digest = hashlib.sha1(root.encode()).hexdigest()[:16]
    return osp.join(cache_dir(), 'image_check', f'{digest}.json')


def _read_cache(path: str) -> Dict[str, list]:
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: check again
    if not isinstance(content, dict) or \
            content.get('version') != _CACHE_VERSION or \
            not isinstance(content.get('files'), dict):
        return {}  # another layout: check again
    return content['files']


def _write_cache(path: str, data_root: str,
                 new: Dict[str, Tuple[int, int, Optional[str]]]) -> None:
    # Merge with what is there now: the other split, or another rank, may
    # have written since this process read it.
    files = _read_cache(path)
    files.update({name: list(entry) for name, entry in new.items()})
    content = dict(version=_CACHE_VERSION, data_root=osp.abspath(data_root),
                   files=files)
    try:
        atomic_write(path, json.dumps(content).encode())
    except OSError as err:
        print_log(f'cannot write the image check cache {path}: {err}; the '
                  'next start checks the images again',
                  logger='current', level=logging.WARNING)


def _num_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else (os.cpu_count() or 1)
    # Under torchrun every rank on the node checks at once.
    return max(1, cores // int(os.environ.get('LOCAL_WORLD_SIZE', 1)))


def _check_all(paths: Sequence[str],
               workers: int) -> Tuple[List[Optional[str]], int]:
    """The problem of each path and the number of processes that looked."""
    if workers <= 1 or len(paths) < PARALLEL_MIN_FILES:
        return [image_problem(path) for path in paths], 1
    # Reading headers is Python code under the GIL: processes, not
    # threads, make it parallel.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context(
        'fork' if 'fork' in methods else None)
    chunk = max(1, min(256, len(paths) // (4 * workers)))
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context) as pool:
        return list(pool.map(image_problem, paths, chunksize=chunk)), workers


def find_problems(paths: Sequence[str],
                  data_root: str,
                  workers: Optional[int] = None) -> Dict[str, str]:
    """Check images, reusing the cached result of every unchanged file.

    Args:
        paths (Sequence[str]): The image files.
        data_root (str): Their dataset's root, which names the cache file.
        workers (int, optional): Processes that check files; None sizes
            the pool to the cores (shared by the ranks of a node).

    Returns:
        dict[str, str]: The reason (see :func:`image_problem`) by path, for
        the files that would fail to load.
    """
    problems: Dict[str, str] = {}
    cache_path = cache_file(data_root)
    stored = None
    todo: Dict[str, Tuple[int, int]] = {}
    for path in paths:
        key = osp.abspath(path)
        try:
            stat = os.stat(key)
        except OSError:
            problems[path] = image_problem(path) or 'missing'
            continue
        stamp = (stat.st_size, stat.st_mtime_ns)
        entry = _checked.get(key)
        if entry is None or tuple(entry[:2]) != stamp:
            if stored is None:
                stored = _read_cache(cache_path)
            entry = stored.get(key)
        if entry is not None and tuple(entry[:2]) == stamp:
            _checked[key] = tuple(entry)
            if entry[2] is not None:
                problems[path] = entry[2]
        else:
            todo[path] = stamp
    if not todo:
        return problems
    start = time.perf_counter()
    workers = _num_workers() if workers is None else workers
    results, workers = _check_all(list(todo), workers)
    new = {}
    for (path, stamp), problem in zip(todo.items(), results):
        new[osp.abspath(path)] = (*stamp, problem)
        if problem is not None:
            problems[path] = problem
    _checked.update(new)
    _write_cache(cache_path, data_root, new)
    print_log(
        f'checked {len(todo)} images in {time.perf_counter() - start:.1f} s '
        f'({workers} process{"es" if workers > 1 else ""}; results cached '
        f'in {cache_path})',
        logger='current', level=logging.INFO)
    return problems


def check_listed_images(data_list: List[dict],
                        data_root: str,
                        what: str,
                        source: str,
                        skip_broken: bool = False) -> List[dict]:
    """Check the images of a data list; fail, or leave out the broken ones.

    Args:
        data_list (list[dict]): Data infos with ``img_path`` and, if the
            dataset records it, ``list_line``.
        data_root (str): The dataset's root folder.
        what (str): The dataset and split, for messages (``"CUB200 split
            'train'"``).
        source (str): Where to get the dataset (see :class:`DatasetError`).
        skip_broken (bool): Log the broken images (warning) and return the
            others instead of raising. Defaults to False.

    Returns:
        list[dict]: The infos of the images that load.
    """
    problems = find_problems([info['img_path'] for info in data_list],
                             data_root)
    if not problems:
        return data_list
    broken = [info for info in data_list if info['img_path'] in problems]
    kept = [info for info in data_list if info['img_path'] not in problems]
    summary = _describe(broken, problems, data_root, what, len(data_list))
    if not skip_broken:
        raise DatasetError(
            f'{summary} (replace them, or set the dataset\'s '
            'skip_broken=True to leave them out)', source)
    if not kept:
        raise DatasetError(f'{summary}: no image left', source)
    print_log(f'{summary}; left out (skip_broken=True)', logger='current',
              level=logging.WARNING)
    return kept


def _describe(broken: List[dict], problems: Dict[str, str], data_root: str,
              what: str, total: int) -> str:
    """One line: how many, the first few and where the rest are listed."""
    def name(info: dict) -> str:
        path = info['img_path']
        where = info.get('list_line')
        where = f', listed at {where}' if where else ''
        return f'{path} ({problems[path]}{where})'

    text = (f'{what}: {len(broken)} of {total} images would not load: '
            + ', '.join(name(info) for info in broken[:NAMED_IN_MESSAGE]))
    if len(broken) > NAMED_IN_MESSAGE:
        slug = re.sub(r'\W+', '_', what).strip('_')
        stem = osp.splitext(cache_file(data_root))[0]
        listing = f'{stem}.{slug}.broken.txt'
        lines = ''.join(f'{name(info)}\n' for info in broken)
        try:
            atomic_write(listing, lines.encode())
            text += (f' and {len(broken) - NAMED_IN_MESSAGE} more '
                     f'(all listed in {listing})')
        except OSError:
            text += f' and {len(broken) - NAMED_IN_MESSAGE} more'
    return text
