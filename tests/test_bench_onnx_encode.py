"""benchmarks/onnx_encode_throughput.py in a small CPU mode: its table and
that both runtimes gave the same codes. No timing is asserted."""
import os.path as osp
import re
import sys

import pytest

from conftest import REPO

pytest.importorskip('onnx', reason='onnx is an optional extra: '
                    'pip install -e ".[onnx]"')
pytest.importorskip('onnxruntime', reason='onnxruntime is an optional '
                    'extra: pip install -e ".[onnx]"')
sys.path.insert(0, osp.join(REPO, 'benchmarks'))
import onnx_encode_throughput  # noqa: E402

DIGITS = 'configs/queryopt/queryopt_digits_12bit.py'


def test_small_run_prints_the_table(capsys):
    measured = onnx_encode_throughput.main([
        '--models', f'{DIGITS}:16x16', '--batch-sizes', '1', '3',
        '--threads', '1', '--repeats', '1', '--min-seconds', '0.01'])
    cells = measured[f'{DIGITS}:16x16']
    assert set(cells) == {(1, 1), (3, 1)}
    assert all(cell['same'] and cell['pytorch'] > 0
               and cell['onnxruntime'] > 0 for cell in cells.values())
    table = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('|')]
    assert table[0] == onnx_encode_throughput.HEADER
    assert len(table) == 4
    assert re.fullmatch(
        r'\| queryopt_digits_12bit \| 16x16 \| 3 \| 1 \| [\d,]+\.\d img/s '
        r'\| [\d,]+\.\d img/s \| \d+\.\d\d \| yes \|', table[3])


def test_a_malformed_model_spec_is_one_line():
    with pytest.raises(SystemExit, match=r"--models 'x.py:big': expected "
                       r'CONFIG:HxW'):
        onnx_encode_throughput.main(['--models', 'x.py:big'])
