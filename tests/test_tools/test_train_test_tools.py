"""The command-line tools, run as a user runs them."""
import os
import re
import os.path as osp
import subprocess
import sys

import mmpretrain
import pytest

from conftest import REPO, tiny_digits_cfg


def run(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture
def tiny_config(digits_root, tmp_path):
    cfg = tiny_digits_cfg(digits_root, str(tmp_path / 'work'), rounds=1,
                          epochs_per_round=2, num_samples=32)
    path = str(tmp_path / 'tiny_digits.py')
    cfg.dump(path)
    return path


def test_train_then_test_tools(tiny_config, tmp_path):
    out = run('tools/train.py', tiny_config)
    assert re.search(r'Final evaluation: .*retrieval/mAP: \d\.\d{4}', out)
    # A clean console: no library warning on a normal run.
    assert 'WARNING' not in out and 'Warning' not in out, [
        line for line in out.splitlines() if 'arning' in line.lower()]
    ckpt = str(tmp_path / 'work' / 'epoch_1.pth')  # 1 round
    for source in ('learned', 'encoded'):
        out = run('tools/test.py', tiny_config, ckpt, '--database', source)
        assert 'retrieval/mAP:' in out, out[-2000:]


def test_mmpretrain_train_script_finds_our_modules(tiny_config, tmp_path):
    """Only the config's custom_imports brings mmqueryopt in."""
    script = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools',
                      'train.py')
    out = run(script, tiny_config, '--cfg-options',
              'train_dataloader.persistent_workers=False',
              'val_dataloader.persistent_workers=False',
              'test_dataloader.persistent_workers=False',
              cwd=str(tmp_path))
    assert 'retrieval/mAP:' in out


def test_export_digits_split(tmp_path):
    from export_digits import export_digits
    root = str(tmp_path / 'digits')
    assert export_digits(root, size=8) == 1797
    split = [line.split() for line in open(osp.join(root,
                                                   'train_test_split.txt'))]
    queries = [int(i) for i, flag in split if flag == '0']
    assert len(queries) == 360 and queries[:3] == [1, 6, 11]
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith('.')]
