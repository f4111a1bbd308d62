"""tools/analysis_tools/complexity_table.py, run as a user runs it, on two
methods (each ResNet-50 model costs seconds; the full table is run by hand,
see configs/queryopt/README.md): ADSH against ResNet-50's MACs in closed
form, QueryOpt against the facts file, both beside the paper's Table 4."""
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO
from mmqueryopt.analysis.complexity_table import (COLUMNS, PAPER_TABLE4,
                                                  method_config, to_markdown,
                                                  toolbox_methods)

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'complexity_table.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=REPO,
                          capture_output=True, text=True)


def resnet50_macs(size: int = 224) -> int:
    """Multiply-accumulates of torchvision's ResNet-50 convolutions at
    ``size`` x ``size``: each conv's output cells x in x out channels x
    kernel area (stride 2 in the stem, the max pool, and each stage's first
    3x3 conv and shortcut)."""
    side = size // 2
    total = side * side * 64 * 3 * 7 * 7
    side //= 2
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512),
                                                 (3, 4, 6, 3))):
        for block in range(blocks):
            out = side // 2 if block == 0 and stage > 0 else side
            total += side * side * inplanes * planes
            total += out * out * 9 * planes * planes
            total += out * out * planes * 4 * planes
            if block == 0:
                total += out * out * inplanes * 4 * planes
            inplanes, side = 4 * planes, out
    return total


@pytest.fixture(scope='module')
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp('table4') / 'table4.md'
    result = run_tool('--methods', 'adsh', 'queryopt', '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    return out, result.stdout


def test_counts_are_the_closed_forms_and_the_facts(table):
    out, stdout = table
    with open(out.with_suffix('.json')) as f:
        adsh, queryopt = json.load(f)
    assert adsh['method'] == 'adsh' and adsh['bits'] == 12
    assert adsh['config'] == 'configs/adsh/adsh_cub_12bit.py'
    # ResNet-50 (23,508,032 without its classifier) and fc 2048 -> 12.
    assert adsh['params'] == adsh['trainable_params'] == (
        23_508_032 + 2048 * 12 + 12)
    macs = resnet50_macs() + 2048 * 12
    assert adsh['inference_macs'] == adsh['training_macs'] == macs
    assert adsh['paper_params_m'] is None and adsh['note'] is None
    # Facts file: 31,713,664 trainable, 31,939,008 in all; 5.21 GMACs at
    # inference and 5.38 in training mode; paper 31.71 M, 5.27 / 5.23 G.
    assert queryopt['trainable_params'] == 31_713_664
    assert queryopt['params'] == 31_939_008
    assert queryopt['inference_macs'] / 1e9 == pytest.approx(5.21, abs=5e-3)
    assert queryopt['training_macs'] / 1e9 == pytest.approx(5.38, abs=5e-3)
    assert (queryopt['paper_params_m'], queryopt['paper_training_g'],
            queryopt['paper_inference_g']) == (31.71, 5.27, 5.23)
    # The same numbers as CSV and as the printed and written Markdown.
    with open(out.with_suffix('.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['adsh', 'queryopt']
    assert int(rows[1]['trainable_params']) == 31_713_664
    assert int(rows[0]['inference_macs']) == macs
    assert rows[0]['paper_params_m'] == ''
    assert float(rows[1]['paper_inference_g']) == 5.23
    with open(out) as f:
        assert f.read() == stdout
    assert ('| QueryOpt | 12 | 31.94 | 31.71 | 31.71 | 5.38 | 5.27 | 5.21 | '
            '5.23 | `configs/queryopt/queryopt_cub_12bit.py` |') in stdout
    assert ('| ADSH | 12 | 23.53 | 23.53 | – | 4.09 | – | 4.09 | – |'
            in stdout)


def test_every_method_has_a_config_at_its_counted_length():
    methods = toolbox_methods(REPO)
    assert methods == sorted(
        name for name in os.listdir(osp.join(REPO, 'configs'))
        if osp.isdir(osp.join(REPO, 'configs', name)) and name != '_base_')
    for method in methods:
        assert osp.isfile(osp.join(REPO, method_config(REPO, method)))
    # The lengths that give the paper's parameter counts (baselines facts).
    assert {m: PAPER_TABLE4[m]['bits'] for m in PAPER_TABLE4} == dict(
        exchnet=48, semicon=24, agmh=12, queryopt=12)
    assert method_config(REPO, 'semicon') == \
        'configs/semicon/semicon_cub_24bit.py'


def test_training_work_outside_the_forward_is_noted():
    row = dict.fromkeys(COLUMNS, None)
    row.update(method='fish', name='FISH', config='c.py', bits=12,
               params=10**6, trainable_params=10**6, training_macs=10**9,
               inference_macs=10**9, note='FISH: twice.')
    lines = to_markdown([row, dict(row, name='ADSH', note=None)]).split('\n')
    assert lines[2:] == [
        '| FISH | 12 | 1.00 | 1.00 | – | 1.00 | – | 1.00 | – | `c.py` |',
        '| ADSH | 12 | 1.00 | 1.00 | – | 1.00 | – | 1.00 | – | `c.py` |',
        '', 'FISH: twice.', '']


@pytest.mark.parametrize('args, names', [
    (['--methods', 'adsh', 'nosuch'], "--methods: no method 'nosuch'"),
    (['--out', '{tmp}'], '--out: {tmp} is a folder'),
])
def test_bad_input_is_one_line_before_any_count(args, names, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    result = run_tool(*args)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    (line, ) = result.stderr.strip().splitlines()
    assert names.format(tmp=tmp_path) in line
    assert result.stdout == '' and os.listdir(tmp_path) == []
