"""Best mAP of training runs beside the papers' tables.

A run is a folder ``<work_dir>/<timestamp>/`` as MMEngine's runner leaves
it: ``vis_data/scalars.json`` (one JSON object per logged step; evaluation
lines hold ``retrieval/mAP`` and ``step``, the round) and
``vis_data/config.py`` (the config it ran). A run is named by its work
dir, which MMEngine calls after the config (``work_dirs/<config name>``):
``<method>[_<variant>]_<dataset>_<k>bit``, e.g. ``queryopt_cub_12bit`` or
``queryopt_swin-t_cub_12bit``. The code length is read from the config
(``model.head.code_length``); the papers' mAP beside each run comes from the
method folders' metafiles (:func:`mmqueryopt.model_index.paper_maps`).

:func:`gather` lists the best run of each config; :func:`paper_tables`
lays them out as the QueryOpt paper's tables: Table 1 (a row a method, a
column a code length, one table a dataset), Table 2 (the ablation rows of
``queryopt_ablation-<row>_*`` runs) and Table 3 (the branch counts of
``queryopt_branches-<N>_*`` runs), ours beside the paper's numbers.
"""
import csv
import glob
import io
import json
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmqueryopt.model_index import paper_maps

MAP_KEY = 'retrieval/mAP'
_NAME = re.compile(r'^(?P<method>[a-z0-9-]+)(?:_(?P<variant>.+?))?'
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


# ------------------------------------------------- the paper's table layouts

PAPER_BITS = (12, 24, 32, 48)
# The datasets in the order of the papers' Table 1.
PAPER_DATASETS = ('cub', 'aircraft', 'food101', 'nabirds', 'vegfru')
# QueryOpt's Table 2 (CUB200, mAP %): its rows, which parts they switch on
# (S, Q, A) and the ablation configs' variant (``queryopt_ablation-<row>``).
ABLATION_ROWS = (('base', 'ResNet-50 + ADSH', (False, False, False)),
                 ('s', '+S', (True, False, False)),
                 ('sq', '+S+Q', (True, True, False)),
                 ('sqa', '+S+Q+A', (True, True, True)))
PAPER_ABLATION = {
    'base': {12: 20.03, 24: 50.33, 32: 61.68, 48: 65.43},
    's': {12: 27.43, 24: 59.19, 32: 67.69, 48: 77.07},
    'sq': {12: 33.33, 24: 64.94, 32: 74.79, 48: 80.52},
    'sqa': {12: 72.19, 24: 81.38, 32: 82.22, 48: 83.96},
}
# QueryOpt's Table 3 (12 bits, mAP %): N branches in training, the
# original included (``queryopt_branches-<N>``).
PAPER_BRANCHES = {
    'cub': {1: 33.33, 2: 52.44, 4: 69.46, 6: 71.57, 8: 72.19, 12: 72.36},
    'aircraft': {1: 39.43, 2: 65.70, 4: 74.51, 6: 75.20, 8: 78.47,
                 12: 78.38},
}
# QueryOpt's relaxed width: its configs decode 96 / k branches.
QUERYOPT_RELAXED_DIMS = 96
TABLES = ('runs', '1', '2', '3')


class PaperTable(NamedTuple):
    """One table in a paper's layout.

    Attributes:
        number (str): The paper's table, ``'1'``, ``'2'`` or ``'3'``.
        title (str): E.g. ``'Table 2, cub: ablation, mAP (%), ours /
            paper'``.
        header (list[str]): Column names.
        lines (list[list[str]]): Formatted cells, one list a table row.
        records (list[dict]): One dict a cell with a number (ours or the
            paper's): ``table``, ``dataset``, ``row``, ``column``,
            ``ours``, ``paper``, ``difference``, ``round``, ``runs``,
            ``best_run``; the CSV's rows.
    """
    number: str
    title: str
    header: List[str]
    lines: List[List[str]]
    records: List[Dict[str, object]]


def _variant_number(variant: Optional[str], prefix: str) -> Optional[int]:
    if variant and variant.startswith(prefix):
        tail = variant[len(prefix):]
        return int(tail) if tail.isdigit() else None
    return None


def ablation_row(row: Dict[str, object]) -> Optional[str]:
    """Which Table 2 row a gathered row's runs are: its
    ``queryopt_ablation-<row>`` variant, or the same model under another
    name (the main QueryOpt config is "+S+Q+A"; Table 3's one branch is
    "+S+Q", its 96 / k branches "+S+Q+A"); None for other runs."""
    if row['method'] != 'queryopt':
        return None
    variant, bits = row['variant'], row['bits']
    if variant is None:
        return 'sqa'
    if variant.startswith('ablation-'):
        key = variant[len('ablation-'):]
        return key if key in PAPER_ABLATION else None
    n = _variant_number(variant, 'branches-')
    if n == 1:
        return 'sq'
    if n is not None and bits and n * bits == QUERYOPT_RELAXED_DIMS:
        return 'sqa'
    return None


def branch_count(row: Dict[str, object]) -> Optional[int]:
    """N, Table 3's branches, of a gathered row: its
    ``queryopt_branches-<N>`` variant, 1 for the "+S+Q" ablation row, 96 / k
    for QueryOpt's own config and the "+S+Q+A" row; None otherwise."""
    if row['method'] != 'queryopt':
        return None
    variant, bits = row['variant'], row['bits']
    n = _variant_number(variant, 'branches-')
    if n is not None:
        return n
    if variant == 'ablation-sq':
        return 1
    if variant in (None, 'ablation-sqa') and bits and \
            QUERYOPT_RELAXED_DIMS % bits == 0:
        return QUERYOPT_RELAXED_DIMS // bits
    return None


def _is_study(row: Dict[str, object]) -> bool:
    """A run of Table 2's or Table 3's configs (not a Table 1 row)."""
    variant = row['variant'] or ''
    return row['method'] == 'queryopt' and (
        variant.startswith('ablation-') or variant.startswith('branches-'))


def _best(rows: Sequence[Dict[str, object]]) -> Optional[Dict[str, object]]:
    """The best of rows that are one model under several names, with the
    runs of all of them counted."""
    if not rows:
        return None
    best = max(rows, key=lambda r: r['best_map'])
    return dict(best, runs=sum(r['runs'] for r in rows))


def _cell(table: str, dataset: str, row: str, column: str,
          ours: Optional[Dict[str, object]], paper: Optional[float],
          records: list) -> str:
    """'ours / paper' (two decimals, '–' for none); records the numbers."""
    value = None if ours is None else ours['best_map']
    if value is not None or paper is not None:
        # Six decimals of a per cent: more than any logged mAP holds, and
        # no float noise (73.12 - 72.19) in the file.
        records.append(dict(
            table=table, dataset=dataset, row=row, column=column,
            ours=None if value is None else round(value, 6), paper=paper,
            difference=None if value is None or paper is None else
            round(value - paper, 6),
            round=None if ours is None else ours['round'],
            runs=0 if ours is None else ours['runs'],
            best_run=None if ours is None else ours['run']))
    ours_text = '–' if value is None else f'{value:.2f}'
    paper_text = '–' if paper is None else f'{paper:.2f}'
    return f'{ours_text} / {paper_text}'


def _dataset_order(datasets) -> List[str]:
    known = [d for d in PAPER_DATASETS if d in datasets]
    return known + sorted(set(datasets) - set(known))


def table1(rows: Sequence[Dict[str, object]]) -> List[PaperTable]:
    """Table 1's layout, one table a dataset: a row a method (and variant:
    another backbone...), a column a code length, ours / the paper's mAP.
    Ablation and branch runs are left to :func:`table2` and
    :func:`table3`."""
    rows = [r for r in rows if not _is_study(r)]
    tables = []
    for dataset in _dataset_order({r['dataset'] for r in rows}):
        here = [r for r in rows if r['dataset'] == dataset]
        methods = sorted({(r['method'], r['variant'] or '') for r in here})
        papers = {
            (method, variant, bits): paper_map(method, dataset, bits,
                                               variant or None)
            for method, variant in methods for bits in PAPER_BITS}
        bits_list = sorted({r['bits'] for r in here if r['bits']} | (
            set(PAPER_BITS) if any(v is not None for v in papers.values())
            else set()))
        records, lines = [], []
        for method, variant in methods:
            label = method + (f' ({variant})' if variant else '')
            cells = [label]
            for bits in bits_list:
                ours = _best([r for r in here if r['method'] == method and
                              (r['variant'] or '') == variant and
                              r['bits'] == bits])
                cells.append(_cell('1', dataset, label, f'{bits} bits', ours,
                                   papers.get((method, variant, bits)),
                                   records))
            lines.append(cells)
        tables.append(PaperTable(
            '1', f'Table 1, {dataset}: mAP (%), ours / paper',
            ['Method'] + [f'{b} bits' for b in bits_list], lines, records))
    return tables


def _one_dataset(rows, table: str, what: str) -> str:
    """The one dataset of ``rows``.

    Raises:
        ValueError: Several datasets; names each one's runs.
    """
    datasets = _dataset_order({r['dataset'] for r in rows})
    if len(datasets) > 1:
        named = '; '.join(
            f'{d}: ' + ', '.join(sorted({r['name'] for r in rows
                                         if r['dataset'] == d}))
            for d in datasets)
        raise ValueError(
            f'Table {table} compares {what} on one dataset, but the runs '
            f'mix {len(datasets)} ({named}): choose one with --dataset')
    return datasets[0]


def table2(rows: Sequence[Dict[str, object]]) -> Optional[PaperTable]:
    """Table 2's layout, the ablation: a row each of base, +S, +S+Q,
    +S+Q+A, a column a code length, ours / the paper's mAP (the paper's
    for CUB only). None without a ``queryopt_ablation-*`` run.

    Raises:
        ValueError: The ablation runs are of several datasets.
    """
    study = [r for r in rows if (r['variant'] or '').startswith(
        'ablation-') and r['method'] == 'queryopt']
    if not study:
        return None
    dataset = _one_dataset(study, '2', 'the ablation rows')
    here = [r for r in rows if r['dataset'] == dataset]
    paper = PAPER_ABLATION if dataset == 'cub' else {}
    bits_list = sorted({r['bits'] for r in study if r['bits']} | (
        set(PAPER_BITS) if paper else set()))
    records, lines = [], []
    for key, label, parts in ABLATION_ROWS:
        cells = [label] + ['✔' if on else '✗' for on in parts]
        for bits in bits_list:
            ours = _best([r for r in here if r['bits'] == bits and
                          ablation_row(r) == key])
            cells.append(_cell('2', dataset, label, f'{bits} bits', ours,
                               paper.get(key, {}).get(bits), records))
        lines.append(cells)
    return PaperTable(
        '2', f'Table 2, {dataset}: ablation, mAP (%), ours / paper',
        ['Configuration', 'S', 'Q', 'A'] + [f'{b} bits' for b in bits_list],
        lines, records)


def table3(rows: Sequence[Dict[str, object]]) -> Optional[PaperTable]:
    """Table 3's layout, the number of branches N: a row a dataset (at
    its branch runs' one code length), a column an N, ours / the paper's
    mAP (the paper's for CUB and FGVC-Aircraft at 12 bits). None without a
    ``queryopt_branches-*`` run.

    Raises:
        ValueError: A dataset's branch runs have several code lengths.
    """
    study = [r for r in rows if r['method'] == 'queryopt' and
             _variant_number(r['variant'], 'branches-') is not None]
    if not study:
        return None
    datasets = _dataset_order({r['dataset'] for r in study})
    lengths = {}
    for dataset in datasets:
        runs = [r for r in study if r['dataset'] == dataset]
        found = sorted({r['bits'] for r in runs})
        if len(found) > 1:
            named = '; '.join(
                f'{b} bits: ' + ', '.join(sorted(
                    r['name'] for r in runs if r['bits'] == b))
                for b in found)
            raise ValueError(
                f'Table 3 compares the branch counts of {dataset} at one '
                f'code length, but its runs mix {len(found)} ({named})')
        lengths[dataset] = found[0]
    counts = sorted({
        branch_count(r) for r in rows if r['dataset'] in lengths and
        r['bits'] == lengths[r['dataset']] and branch_count(r) is not None
    } | {n for d in datasets if lengths[d] == 12
         for n in PAPER_BRANCHES.get(d, {})})
    records, lines = [], []
    for dataset in datasets:
        bits = lengths[dataset]
        paper = PAPER_BRANCHES.get(dataset, {}) if bits == 12 else {}
        label = f'{dataset} ({bits} bits)'
        cells = [label]
        for n in counts:
            ours = _best([r for r in rows if r['dataset'] == dataset and
                          r['bits'] == bits and branch_count(r) == n])
            cells.append(_cell('3', dataset, label, f'N={n}', ours,
                               paper.get(n), records))
        lines.append(cells)
    return PaperTable(
        '3', 'Table 3: number of branches N, mAP (%), ours / paper',
        ['Dataset'] + [f'N = {n}' for n in counts], lines, records)


def paper_tables(rows: Sequence[Dict[str, object]],
                 tables: Sequence[str] = ('1', '2', '3')
                 ) -> List[PaperTable]:
    """The tables asked for (``'1'``, ``'2'``, ``'3'``) that have runs.

    Raises:
        ValueError: A table needs one dataset (Table 2) or one code length
            (Table 3 per dataset) and the runs mix several.
    """
    found = []
    if '1' in tables:
        found += table1(rows)
    for name, build in (('2', table2), ('3', table3)):
        if name in tables:
            table = build(rows)
            if table is not None:
                found.append(table)
    return found


def tables_to_markdown(tables: Sequence[PaperTable]) -> str:
    """Each table under its title, as Markdown."""
    parts = []
    for table in tables:
        lines = [f'### {table.title}', '',
                 '| ' + ' | '.join(table.header) + ' |',
                 '| ' + ' | '.join(['---'] * len(table.header)) + ' |']
        lines += ['| ' + ' | '.join(cells) + ' |' for cells in table.lines]
        parts.append('\n'.join(lines) + '\n')
    return '\n'.join(parts)


CSV_COLUMNS = ('table', 'dataset', 'row', 'column', 'ours', 'paper',
               'difference', 'round', 'runs', 'best_run')


def tables_to_csv(tables: Sequence[PaperTable]) -> str:
    """Every table's numbers, a line a cell (mAP in %, unrounded)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for table in tables:
        for record in table.records:
            writer.writerow({k: '' if record[k] is None else record[k]
                             for k in CSV_COLUMNS})
    return out.getvalue()
