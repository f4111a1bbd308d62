"""Checkpoints through the tools: bad files given to ``tools/test.py``,
``load_from`` and ``--resume PATH`` end in one line naming the file and the
cause; a run killed while saving leaves an intact checkpoint that
``--resume`` continues from, skipping a damaged latest one."""
import glob
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import test as test_tool
import train as train_tool
from conftest import REPO, tiny_digits_cfg
from mmqueryopt.engine.checkpoint_io import load_resumable_checkpoint
from mmqueryopt.fileio import load_checkpoint_file
from test_checkpoint_io import bad_file, warnings_logged  # noqa: F401

BAD_KINDS = {
    'truncated': 'is truncated',
    'empty': 'is empty',
    'garbage': 'is not a checkpoint',
    'crafted': 'was refused',
}


@pytest.fixture(scope='module')
def tiny_config(digits_root, tmp_path_factory):
    """A tiny digits config file: a checkpoint every epoch, one kept, no
    validation (nothing here needs it)."""
    folder = tmp_path_factory.mktemp('tiny')
    cfg = tiny_digits_cfg(digits_root, str(folder / 'work'), rounds=2)
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    path = str(folder / 'tiny.py')
    cfg.dump(path)
    return path


def own_name(tmp_path) -> list:
    """Options giving a run its own experiment name: these runs fail fast,
    and two started in one second would share MMEngine's named instances."""
    return ['--cfg-options', f'experiment_name={tmp_path.name}']


def assert_clear_exit(info, path, words, folder):
    message = str(info.value.code)
    assert message.startswith('error: checkpoint ')
    assert repr(path) in message and words in message
    assert not (folder / 'code_ran').exists()


@pytest.mark.parametrize('kind', BAD_KINDS)
def test_test_tool_names_a_bad_checkpoint(tiny_config, tmp_path, kind):
    path = bad_file(kind, tmp_path)
    with pytest.raises(SystemExit) as info:
        test_tool.main([tiny_config, path, '--work-dir', str(tmp_path),
                        *own_name(tmp_path)])
    assert_clear_exit(info, path, BAD_KINDS[kind], tmp_path)


@pytest.mark.parametrize('kind', BAD_KINDS)
def test_load_from_names_a_bad_checkpoint(tiny_config, tmp_path, kind):
    path = bad_file(kind, tmp_path)
    with pytest.raises(SystemExit) as info:
        train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'work'),
                         '--cfg-options', f'load_from={path}',
                         f'experiment_name={tmp_path.name}'])
    assert_clear_exit(info, path, BAD_KINDS[kind], tmp_path)
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))  # never trained


@pytest.mark.parametrize('kind', [*BAD_KINDS, 'not_resumable'])
def test_resume_path_names_a_bad_checkpoint(tiny_config, tmp_path, kind):
    if kind == 'not_resumable':  # e.g. the converter's output
        path = str(tmp_path / 'converted.pth')
        torch.save(dict(state_dict={}, meta=dict(converted_from='x')), path)
        words = 'is not a training checkpoint'
    else:
        path, words = bad_file(kind, tmp_path), BAD_KINDS[kind]
    with pytest.raises(SystemExit) as info:
        train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'work'),
                         '--resume', path, *own_name(tmp_path)])
    assert_clear_exit(info, path, words, tmp_path)


# Runs tools/train.py, dying as a SIGKILL does while the checkpoint writer
# has written half of the KILL_AT_SAVE-th checkpoint file.
KILL_DRIVER = r'''
import os, os.path as osp, runpy, signal, sys
real_fsync, saves = os.fsync, []

def fsync(fd):
    name = osp.basename(os.readlink(f'/proc/self/fd/{fd}'))
    if name.startswith('.') and '.pth.' in name:
        saves.append(name)
        if len(saves) == int(os.environ['KILL_AT_SAVE']):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)

os.fsync = fsync
sys.argv = ['tools/train.py', *sys.argv[1:]]
sys.path.insert(0, osp.abspath('tools'))  # as `python tools/train.py` does
runpy.run_path('tools/train.py', run_name='__main__')
'''


@pytest.fixture(scope='module')
def killed_while_saving(tiny_config, tmp_path_factory):
    """Work dir of a run killed while writing its second checkpoint."""
    if not osp.isdir('/proc/self/fd'):
        pytest.skip('needs /proc to see which file is being written')
    work_dir = str(tmp_path_factory.mktemp('killed') / 'work')
    proc = subprocess.run(
        [sys.executable, '-c', KILL_DRIVER, tiny_config, '--work-dir',
         work_dir], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO, KILL_AT_SAVE='2'))
    assert proc.returncode == -signal.SIGKILL, (proc.stdout +
                                                proc.stderr)[-3000:]
    return work_dir


def checkpoints(work_dir):
    return sorted(glob.glob(osp.join(work_dir, '*.pth')))


def test_kill_while_saving_leaves_the_previous_checkpoint(
        killed_while_saving):
    work_dir = killed_while_saving
    # max_keep_ckpts=1: MMEngine's hook would have deleted the only
    # intact checkpoint before writing the one the kill cut short.
    survivors = checkpoints(work_dir)
    assert len(survivors) == 1
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == survivors[0]
    assert load_resumable_checkpoint(survivors[0])['meta']['epoch'] >= 1
    stale = glob.glob(osp.join(work_dir, '.*.tmp'))
    assert len(stale) == 1 and osp.basename(survivors[0]) not in stale[0]


def test_resume_skips_a_damaged_latest_and_continues(
        killed_while_saving, tiny_config, tmp_path, warnings_logged):  # noqa
    work_dir = str(tmp_path / 'work')
    shutil.copytree(killed_while_saving, work_dir)
    survivor = checkpoints(work_dir)[0]
    resumed_epoch = load_checkpoint_file(survivor)['meta']['epoch']
    # What MMEngine's in-place writer leaves when killed: the half-written
    # file under its own name, and last_checkpoint naming it.
    [stale] = glob.glob(osp.join(work_dir, '.*.tmp'))
    damaged = osp.join(work_dir, osp.basename(stale)[1:].split('.pth.')[0] +
                       '.pth')
    shutil.copy(stale, damaged)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(damaged)

    train_tool.main([tiny_config, '--work-dir', work_dir, '--resume'])

    assert any(damaged in message and 'is truncated' in message
               for message in warnings_logged)
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert f'resumed epoch: {resumed_epoch},' in open(logs[-1]).read()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        final = load_resumable_checkpoint(f.read())
    assert final['meta']['epoch'] > resumed_epoch
    assert not glob.glob(osp.join(work_dir, '.*.tmp'))  # cleared at start
    for path in checkpoints(work_dir):
        load_resumable_checkpoint(path)
