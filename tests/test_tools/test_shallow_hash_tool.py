"""tools/analysis_tools/shallow_hash.py on the real digits (16x16): the
command as a user runs it writes results.json and a table; a checkpoint of
the same weights gives the same result; bad input is one line before any
work. Subprocesses import torch and MMPretrain (seconds each), so only the
main run and one refusal after the model is built run that way; the rest
calls ``main``."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from analysis_tools.shallow_hash import build_model, main, parse_args
from conftest import REPO
from mmqueryopt.engine.config_options import read_config

TOOL = 'tools/analysis_tools/shallow_hash.py'
CONFIG = 'configs/adsh/adsh_digits_12bit.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def data_options(root):
    return ['--cfg-options'] + [
        f'{loader}.dataset.data_root={root}' for loader in LOADERS
    ]


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, TOOL, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def refusal(*args):
    """The one error line of a run that must refuse."""
    proc = run_tool(*args)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


@pytest.fixture
def one_thread():
    """In-process runs on one thread: pytest imported torch before the
    tools' OpenMP wait policy (tools/openmp_env.py) could apply, and on a
    busy machine two spinning threads make this small network's
    convolutions many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_results(results, method, bits):
    assert results['method'] == method and results['bits'] == bits
    assert 0.0 <= results['mAP'] <= 1.0
    # The ADSH digits model: ResNet_CIFAR's last map (128 channels),
    # MMPretrain's GlobalAveragePooling, a tuple of one vector.
    assert results['feature_dim'] == 128
    assert results['feature'] == ('last of a tuple of vectors, (B, D) '
                                  'vector: as it is')
    assert (results['database_size'], results['query_size']) == (1437, 360)
    assert results['config'] == CONFIG
    objective = np.asarray(results['objective'])
    assert np.all(np.diff(objective) <= 1e-9 * max(objective[:1], default=1))


def test_the_command_writes_results_and_a_table(digits_root, tmp_path):
    out = tmp_path / 'itq'
    proc = run_tool(CONFIG, '--method', 'itq', '--bits', '12', '--out-dir',
                    str(out), '--no-progress', *data_options(digits_root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    results = json.loads((out / 'results.json').read_text())
    check_results(results, 'itq', 12)
    assert results['checkpoint'] is None
    assert results['weights'] == 'random initialisation'
    assert results['settings'] == dict(bits=12, seed=0, iterations=50)
    assert len(results['objective']) == 51
    assert 'randomly initialised backbone and neck (seed 0)' in proc.stderr
    table = proc.stdout.strip().splitlines()
    assert table[0] == ('| method | bits | mAP | feature dim | database | '
                        'queries |')
    assert table[-1] == (f'| itq | 12 | {results["mAP"]:.4f} | 128 | 1437 | '
                         f'360 |')


def test_sdh_and_lsh_and_a_checkpoint_of_the_same_weights(
        digits_root, tmp_path, capsys, one_thread):
    common = ['--out-dir', str(tmp_path / 'run'), '--no-progress',
              *data_options(digits_root)]
    sdh = main([CONFIG, '--method', 'sdh', '--bits', '12', '--anchors',
                '200', '--iterations', '2', *common])
    check_results(sdh, 'sdh', 12)
    assert sdh['settings']['anchors'] == 200
    assert len(sdh['objective']) == 3
    lsh = main([CONFIG, '--method', 'lsh', '--bits', '12', *common])
    check_results(lsh, 'lsh', 12)
    assert lsh['objective'] == []
    # The randomly initialised model saved as a checkpoint: the same
    # features through the safe loader, so the same codes and mAP.
    args = parse_args([CONFIG, '--method', 'lsh', '--bits', '12', *common])
    model = build_model(read_config(CONFIG, args.cfg_options), args)
    checkpoint = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    again = main([CONFIG, checkpoint, '--method', 'lsh', '--bits', '12',
                  *common])
    assert again['weights'] == 'checkpoint'
    assert again['checkpoint'] == checkpoint
    assert again['mAP'] == lsh['mAP']
    written = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert written == again
    assert '| lsh | 12 |' in capsys.readouterr().out


def test_more_bits_than_the_feature_dimension_is_one_line(
        digits_root, tmp_path):
    line = refusal(CONFIG, '--method', 'lsh', '--bits', '129', '--out-dir',
                   str(tmp_path / 'out'), *data_options(digits_root))
    assert line == (
        'error: --bits 129 is more than LSH can give from 1437 database '
        'features of dimension 128 (the pooled output of the config\'s '
        'backbone and neck): at most 128 bits')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args,expected', [
    ([CONFIG, '--method', 'pq', '--bits', '12'],
     "error: --method 'pq' is not one of lsh, itq, sdh"),
    (['configs/nowhere.py', '--method', 'itq', '--bits', '12'],
     'error: config file not found: configs/nowhere.py'),
    ([CONFIG, '--method', 'itq', '--bits', '0'],
     'error: --bits must be at least 1; got 0'),
    ([CONFIG, 'nowhere.pth', '--method', 'itq', '--bits', '12'],
     'error: checkpoint file not found: nowhere.pth'),
])
def test_bad_arguments_are_one_line(args, expected, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([*args, '--out-dir', str(tmp_path / 'out')])
    assert str(info.value) == expected
    assert not (tmp_path / 'out').exists()


def test_more_anchors_than_database_images_is_one_line(
        digits_root, tmp_path, one_thread):
    with pytest.raises(SystemExit) as info:
        main([CONFIG, '--method', 'sdh', '--bits', '12', '--anchors', '2000',
              '--out-dir', str(tmp_path / 'out'),
              *data_options(digits_root)])
    assert str(info.value) == ('error: --anchors 2000 is more than the 1437 '
                               'database images SDH draws them from')
    assert not osp.exists(tmp_path / 'out')
