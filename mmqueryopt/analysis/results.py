"""Best mAP of training runs beside the papers' Table 1.

A run is a folder ``<work_dir>/<timestamp>/`` as MMEngine's runner leaves
it: ``vis_data/scalars.json`` (one JSON object per logged step; evaluation
lines hold ``retrieval/mAP`` and ``step``, the round) and
``vis_data/config.py`` (the config it ran). A run is named by its work
dir, which MMEngine calls after the config (``work_dirs/<config name>``):
``<method>[_<variant>]_<dataset>_<k>bit``, e.g. ``queryopt_cub_12bit`` or
``queryopt_swin-t_cub_12bit``. The code length is read from the config
(``model.head.code_length``); the papers' mAP beside each run comes from the
method folders' metafiles (:func:`mmqueryopt.model_index.paper_maps`).
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

from mmqueryopt.model_index import paper_maps

MAP_KEY = 'retrieval/mAP'
_NAME = re.compile(r'^(?P<method>[a-z0-9]+)(?:_(?P<variant>.+?))?'
                   r'_(?P<dataset>[a-z0-9]+)_(?P<bits>\d+)bit$')


def paper_map(method: str, dataset: str, bits: int,
              variant: Optional[str] = None) -> Optional[float]:
    """The paper's mAP (%) for config ``<method>_<dataset>_<bits>bit``, as
    the method folder's metafile quotes it (``configs/<method>/
    metafile.yml``), or None (another backbone, dataset or length, a
    method without a metafile, or no ``model-index.yml``)."""
    if variant is not None:
        return None
    return paper_maps().get(f'{method}_{dataset}_{bits}bit')


def read_evaluations(scalars_file: str) -> List[Tuple[int, float]]:
    """``(round, mAP)`` of every evaluation logged in ``scalars.json``.

    Raises:
        ValueError: A line that is not JSON; names the file and line.
    """
    found = []
    with open(scalars_file) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{scalars_file}:{number} is not JSON '
                                 f'({error})') from None
            if MAP_KEY in record:
                found.append((int(record['step']), float(record[MAP_KEY])))
    return found


def describe_run(run_dir: str) -> Dict[str, object]:
    """Method, variant, dataset and code length of a run folder."""
    from mmengine.config import Config
    work_dir = osp.dirname(osp.abspath(run_dir))
    name = osp.basename(work_dir)
    config_file = osp.join(run_dir, 'vis_data', 'config.py')
    bits = None
    if osp.isfile(config_file):
        cfg = Config.fromfile(config_file, import_custom_modules=False)
        bits = cfg.get('model', {}).get('head', {}).get('code_length')
    match = _NAME.match(name)
    if match is None:
        info = dict(method=name, variant=None, dataset='?')
    else:
        info = dict(method=match['method'], variant=match['variant'],
                    dataset=match['dataset'])
        bits = bits if bits is not None else int(match['bits'])
    info.update(bits=bits, name=name, work_dir=work_dir)
    return info


def gather(root: str) -> List[Dict[str, object]]:
    """Best mAP per (method, variant, dataset, bits) over the runs under
    ``root``.

    Returns:
        list[dict]: Rows sorted by method, dataset, bits, variant: the keys
        of :func:`describe_run` plus ``best_map`` (%), ``round`` and
        ``run`` (the run folder of the best evaluation; the first one on
        ties), ``runs`` (runs with evaluations), ``paper`` (%, or None) and
        ``difference`` (ours - paper, points).
    """
    pattern = osp.join(root, '**', 'vis_data', 'scalars.json')
    rows: Dict[tuple, dict] = {}
    for scalars in sorted(glob.glob(pattern, recursive=True)):
        evaluations = read_evaluations(scalars)
        if not evaluations:
            continue
        run_dir = osp.dirname(osp.dirname(scalars))
        info = describe_run(run_dir)
        key = (info['method'], info['dataset'], info['bits'] or 0,
               info['variant'] or '')
        step, best = max(evaluations, key=lambda e: (e[1], -e[0]))
        row = rows.setdefault(key, dict(info, best_map=None, runs=0))
        row['runs'] += 1
        if row['best_map'] is None or 100 * best > row['best_map']:
            row.update(best_map=100 * best, round=step, run=run_dir)
    result = []
    for key in sorted(rows):
        row = rows[key]
        paper = paper_map(row['method'], row['dataset'], row['bits'],
                          row['variant'])
        row.update(paper=paper, difference=None if paper is None else
                   row['best_map'] - paper)
        result.append(row)
    return result


def to_markdown(rows: List[Dict[str, object]]) -> str:
    """The rows as a Markdown table (mAP in %, two decimals)."""
    def num(value, signed=False):
        if value is None:
            return '–'
        return f'{value:+.2f}' if signed else f'{value:.2f}'

    lines = [
        '| method | dataset | bits | best mAP (%) | round | paper (%) | '
        'ours - paper | runs | best run |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for row in rows:
        method = row['method'] + (f' ({row["variant"]})'
                                  if row['variant'] else '')
        lines.append(
            f'| {method} | {row["dataset"]} | {row["bits"]} | '
            f'{num(row["best_map"])} | {row["round"]} | '
            f'{num(row["paper"])} | {num(row["difference"], True)} | '
            f'{row["runs"]} | `{row["run"]}` |')
    return '\n'.join(lines) + '\n'
