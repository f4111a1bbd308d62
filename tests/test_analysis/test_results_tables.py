"""tools/analysis_tools/gather_results.py in the QueryOpt paper's layouts
(Table 1 a dataset, Table 2 ablation, Table 3 branch counts), run as a user
runs it: on made-up run folders whose best mAP is known by construction,
on a digits run trained here, and on folders a table cannot be made of."""
import csv
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import REPO, tiny_digits_cfg
from mmqueryopt.analysis.results import (PAPER_ABLATION, PAPER_BRANCHES,
                                         ablation_row, branch_count)

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'gather_results.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          cwd=REPO, capture_output=True, text=True)


def make_run(root, name, bits, maps, stamp='20260101_000000'):
    """A finished run as MMEngine leaves it: its config and one scalars
    line per evaluation (rounds 5, 10, ...), plus a loss line."""
    vis_data = osp.join(root, name, stamp, 'vis_data')
    os.makedirs(vis_data)
    Config(dict(model=dict(head=dict(code_length=bits)))).dump(
        osp.join(vis_data, 'config.py'))
    with open(osp.join(vis_data, 'scalars.json'), 'w') as f:
        for i, value in enumerate(maps):
            f.write(json.dumps({'retrieval/mAP': value,
                                'step': 5 * (i + 1)}) + '\n')
        f.write(json.dumps({'loss': 1.0, 'step': 5 * len(maps)}) + '\n')


@pytest.fixture
def cub_runs(tmp_path):
    root = tmp_path / 'work_dirs'
    make_run(root, 'queryopt_ablation-base_cub_12bit', 12, [0.18, 0.21])
    make_run(root, 'queryopt_ablation-s_cub_12bit', 12, [0.30, 0.25])
    make_run(root, 'queryopt_ablation-s_cub_48bit', 48, [0.70])
    make_run(root, 'queryopt_ablation-sq_cub_12bit', 12, [0.35])
    # +S+Q+A at 12 bits: the ablation's own run and the main config's two
    # runs are one model; the best of the three counts.
    make_run(root, 'queryopt_ablation-sqa_cub_12bit', 12, [0.705])
    make_run(root, 'queryopt_cub_12bit', 12, [0.69, 0.71])
    make_run(root, 'queryopt_cub_12bit', 12, [0.60],
             stamp='20260102_000000')
    make_run(root, 'queryopt_branches-4_cub_12bit', 12, [0.65])
    make_run(root, 'queryopt_branches-6_aircraft_12bit', 12, [0.74])
    make_run(root, 'adsh_cub_12bit', 12, [0.19])
    return root


def test_runs_become_the_papers_tables(cub_runs, tmp_path):
    out, out_csv = tmp_path / 'results.md', tmp_path / 'results.csv'
    result = run_tool(cub_runs, '--out', out, '--out-csv', out_csv)
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        text = f.read()
    assert text == result.stdout
    # Table 1: the main configs only, the paper's four lengths.
    assert ('| Method | 12 bits | 24 bits | 32 bits | 48 bits |\n'
            '| --- | --- | --- | --- | --- |\n'
            '| adsh | 19.00 / 20.03 | – / 50.33 | – / 61.68 | – / 65.43 |\n'
            '| queryopt | 71.00 / 72.19 | – / 81.38 | – / 82.22 | '
            '– / 83.96 |\n') in text
    assert '| queryopt (ablation' not in text.split('### Table 1')[1]
    # Table 2: the rows' best evaluations beside the paper's.
    assert ('| ResNet-50 + ADSH | ✗ | ✗ | ✗ | 21.00 / 20.03 | – / 50.33 | '
            '– / 61.68 | – / 65.43 |\n'
            '| +S | ✔ | ✗ | ✗ | 30.00 / 27.43 | – / 59.19 | – / 67.69 | '
            '70.00 / 77.07 |\n'
            '| +S+Q | ✔ | ✔ | ✗ | 35.00 / 33.33 | – / 64.94 | – / 74.79 | '
            '– / 80.52 |\n'
            '| +S+Q+A | ✔ | ✔ | ✔ | 71.00 / 72.19 | – / 81.38 | '
            '– / 82.22 | – / 83.96 |\n') in text
    # Table 3: N = 1 is the +S+Q run, N = 8 (96 / 12) the main config's.
    assert ('| Dataset | N = 1 | N = 2 | N = 4 | N = 6 | N = 8 | N = 12 |\n'
            '| --- | --- | --- | --- | --- | --- | --- |\n'
            '| cub (12 bits) | 35.00 / 33.33 | – / 52.44 | 65.00 / 69.46 | '
            '– / 71.57 | 71.00 / 72.19 | – / 72.36 |\n'
            '| aircraft (12 bits) | – / 39.43 | – / 65.70 | – / 74.51 | '
            '74.00 / 75.20 | – / 78.47 | – / 78.38 |\n') in text
    with open(out_csv) as f:
        records = {(r['table'], r['dataset'], r['row'], r['column']): r
                   for r in csv.DictReader(f)}
    full = records[('2', 'cub', '+S+Q+A', '12 bits')]
    assert float(full['ours']) == 71.0 and float(full['paper']) == 72.19
    assert float(full['difference']) == pytest.approx(71.0 - 72.19,
                                                      abs=1e-6)
    assert full['round'] == '10' and full['runs'] == '3'
    assert full['best_run'].endswith(
        osp.join('queryopt_cub_12bit', '20260101_000000'))
    base = records[('2', 'cub', 'ResNet-50 + ADSH', '12 bits')]
    assert (float(base['ours']), base['round']) == (21.0, '10')
    empty = records[('3', 'aircraft', 'aircraft (12 bits)', 'N=2')]
    assert (empty['ours'], float(empty['paper']), empty['runs']) == (
        '', 65.70, '0')
    # Every paper number of Tables 2 and 3 is written, ours or not.
    for key, by_bits in PAPER_ABLATION.items():
        for bits, value in by_bits.items():
            assert any(r['table'] == '2' and float(r['paper']) == value and
                       r['column'] == f'{bits} bits'
                       for r in records.values())
    for dataset, by_n in PAPER_BRANCHES.items():
        for n, value in by_n.items():
            row = records[('3', dataset, f'{dataset} (12 bits)', f'N={n}')]
            assert float(row['paper']) == value


def test_one_table_can_be_asked_for(cub_runs):
    result = run_tool(cub_runs, '--table', '3')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('### Table 3: number of branches N')
    assert '### Table 2' not in result.stdout
    assert '| method | dataset |' not in result.stdout


def test_rows_and_branch_counts_of_equivalent_configs():
    def row(name_variant, bits):
        return dict(method='queryopt', variant=name_variant, bits=bits)
    assert ablation_row(row(None, 24)) == 'sqa'
    assert ablation_row(row('branches-8', 12)) == 'sqa'
    assert ablation_row(row('branches-1', 12)) == 'sq'
    assert ablation_row(row('branches-4', 12)) is None
    assert ablation_row(row('swin-t', 12)) is None
    assert ablation_row(dict(method='adsh', variant=None, bits=12)) is None
    assert branch_count(row(None, 12)) == 8
    assert branch_count(row(None, 48)) == 2
    assert branch_count(row('ablation-sqa', 32)) == 3
    assert branch_count(row('ablation-sq', 24)) == 1
    assert branch_count(row('ablation-s', 12)) is None
    assert branch_count(row('branches-12', 12)) == 12


def one_line_error(result, tmp_path):
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    (line, ) = result.stderr.strip().splitlines()
    return line


def test_ablation_runs_of_two_datasets_are_refused(tmp_path):
    root = tmp_path / 'work_dirs'
    make_run(root, 'queryopt_ablation-s_cub_12bit', 12, [0.3])
    make_run(root, 'queryopt_ablation-sq_cub_12bit', 12, [0.3])
    make_run(root, 'queryopt_ablation-s_digits_12bit', 12, [0.9])
    out = tmp_path / 'out' / 'results.md'
    line = one_line_error(run_tool(root, '--out', out), tmp_path)
    assert line == (
        'error: Table 2 compares the ablation rows on one dataset, but the '
        'runs mix 2 (cub: queryopt_ablation-s_cub_12bit, '
        'queryopt_ablation-sq_cub_12bit; digits: '
        'queryopt_ablation-s_digits_12bit): choose one with --dataset')
    assert not osp.exists(out.parent)
    # One dataset chosen: its table, without paper numbers (not CUB).
    result = run_tool(root, '--dataset', 'digits', '--table', '2')
    assert result.returncode == 0, result.stderr
    assert '### Table 2, digits: ablation' in result.stdout
    assert '| +S | ✔ | ✗ | ✗ | 90.00 / – |' in result.stdout
    assert '| ResNet-50 + ADSH | ✗ | ✗ | ✗ | – / – |' in result.stdout


def test_branch_runs_of_two_lengths_are_refused(tmp_path):
    root = tmp_path / 'work_dirs'
    make_run(root, 'queryopt_branches-2_cub_12bit', 12, [0.5])
    make_run(root, 'queryopt_branches-2_cub_24bit', 24, [0.6])
    line = one_line_error(run_tool(root, '--table', '3'), tmp_path)
    assert line == (
        'error: Table 3 compares the branch counts of cub at one code '
        'length, but its runs mix 2 (12 bits: queryopt_branches-2_cub_12bit'
        '; 24 bits: queryopt_branches-2_cub_24bit)')


@pytest.mark.parametrize('args, expected', [
    (['--table', '2'], "error: --table 2 needs queryopt_ablation-* runs"),
    (['--dataset', 'vegfru'], 'error: --dataset vegfru: no run of it'),
    (['--out-csv', '{tmp}'], 'error: --out-csv: {tmp} is a folder'),
])
def test_bad_requests_are_one_line(args, expected, tmp_path):
    root = tmp_path / 'work_dirs'
    make_run(root, 'adsh_cub_12bit', 12, [0.19])
    args = [a.format(tmp=tmp_path) for a in args]
    line = one_line_error(run_tool(root, *args), tmp_path)
    assert line.startswith(expected.format(tmp=tmp_path))


def test_a_trained_digits_ablation_row(digits_root, tmp_path):
    """A real run of the +S+Q row (one branch) on the digits: its best
    logged evaluation is the table's cell."""
    root = tmp_path / 'work_dirs'
    work_dir = root / 'queryopt_ablation-sq_digits_12bit'
    cfg = tiny_digits_cfg(digits_root, str(work_dir), rounds=2,
                          epochs_per_round=1, num_samples=32)
    cfg.model.head.relaxed_dims = 12
    cfg.train_cfg.val_interval = 1
    Runner.from_cfg(cfg).train()
    (scalars, ) = glob.glob(str(work_dir / '*' / 'vis_data' /
                                'scalars.json'))
    with open(scalars) as f:
        logged = [json.loads(line)['retrieval/mAP'] for line in f
                  if 'retrieval/mAP' in line]
    assert len(logged) == 2
    result = run_tool(root, '--table', '2')
    assert result.returncode == 0, result.stderr
    assert (f'| +S+Q | ✔ | ✔ | ✗ | {100 * max(logged):.2f} / – |'
            in result.stdout)
