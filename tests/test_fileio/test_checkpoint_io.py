"""The safe checkpoint loader, the atomic writer and the choice of the
checkpoint to resume from, on files made here (no training)."""
import logging
import os
import os.path as osp
import zipfile

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

from mmqueryopt.compat import route_local_checkpoint_loading
from mmqueryopt.engine.checkpoint_io import (find_resumable_checkpoint,
                                             load_resumable_checkpoint)
from mmqueryopt.fileio import (CheckpointFileError, atomic_write,
                               load_checkpoint_file, load_from_local,
                               remove_stale_temp_files)


class CodeRunningPayload:
    """Unpickles as ``os.system('touch <marker>')``: any loader that runs
    code from a file creates the marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def training_checkpoint(epoch: int) -> dict:
    """What Runner.save_checkpoint writes, in small."""
    return dict(meta=dict(epoch=epoch, iter=10 * epoch),
                state_dict={'w': torch.full((3, ), float(epoch))},
                message_hub=dict(runtime_info={}))


def bad_file(kind: str, folder) -> str:
    """A file of one kind that no loader may accept, in ``folder``."""
    path = str(folder / f'{kind}.pth')
    if kind == 'directory':
        os.mkdir(path)
        return path
    if kind == 'crafted':
        torch.save({'state_dict': CodeRunningPayload(
            str(folder / 'code_ran'))}, path)
        return path
    good = str(folder / 'good.pth')
    torch.save(training_checkpoint(1), good)
    data = open(good, 'rb').read()
    content = dict(
        empty=b'',
        truncated=data[:len(data) // 2],
        # The last bytes alone: torch.load fails with a bare
        # "OSError: [Errno 22] Invalid argument".
        end_truncated=data[:-3],
        garbage=b'model weights, honest\n' * 20,
        bit_flipped=flip_tensor_byte(good, data))[kind]
    with open(path, 'wb') as f:
        f.write(content)
    return path


def flip_tensor_byte(path: str, data: bytes) -> bytes:
    """``data`` with one byte of the first tensor record inverted."""
    with zipfile.ZipFile(path) as archive:
        start = next(info for info in archive.infolist()
                     if '/data/' in info.filename).header_offset
    # Data follow the 30-byte local header, the name and the extra field.
    name_length = int.from_bytes(data[start + 26:start + 28], 'little')
    extra_length = int.from_bytes(data[start + 28:start + 30], 'little')
    damaged = bytearray(data)
    damaged[start + 30 + name_length + extra_length + 5] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize('kind, reason, words', [
    ('empty', 'empty', 'is empty'),
    ('truncated', 'truncated', 'is truncated'),
    ('end_truncated', 'truncated', 'is truncated'),
    ('garbage', 'not_a_checkpoint', 'is not a checkpoint'),
    ('directory', 'not_a_file', 'is not a file'),
    ('bit_flipped', 'damaged', 'CRC-32'),
    ('crafted', 'unsafe_pickle', 'GLOBAL posix.system'),
])
def test_loader_names_file_and_cause(tmp_path, kind, reason, words):
    path = bad_file(kind, tmp_path)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    assert info.value.path == path and info.value.reason == reason
    assert repr(path) in str(info.value) and words in str(info.value)
    assert not (tmp_path / 'code_ran').exists()


def test_bit_flip_would_load_silently_through_torch(tmp_path):
    """Why the loader checks CRCs: torch.load reads the damaged tensor."""
    path = bad_file('bit_flipped', tmp_path)
    loaded = torch.load(path, weights_only=True)['state_dict']['w']
    assert not torch.equal(loaded, torch.full((3, ), 1.0))


def test_missing_file_is_file_not_found(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_checkpoint_file(path)


def test_mmengine_local_loads_go_through_the_safe_loader(tmp_path):
    path = bad_file('crafted', tmp_path)
    route_local_checkpoint_loading(load_from_local)
    with pytest.raises(CheckpointFileError, match='was refused'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not (tmp_path / 'code_ran').exists()


def test_legacy_format_and_extra_safe_globals(tmp_path):
    import argparse
    path = str(tmp_path / 'legacy.pth')
    checkpoint = dict(model={'w': torch.ones(2)},
                      args=argparse.Namespace(lr=0.1, lr_drop=[30]))
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointFileError, match='argparse.Namespace'):
        load_checkpoint_file(path)
    loaded = load_checkpoint_file(
        path, extra_safe_globals=[argparse.Namespace])
    assert loaded['args'].lr_drop == [30]
    # The allowance was for that call only.
    with pytest.raises(CheckpointFileError):
        load_checkpoint_file(path)


def test_resumable_needs_the_keys_runner_resume_reads(tmp_path):
    path = str(tmp_path / 'converted.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta={}), path)
    with pytest.raises(CheckpointFileError,
                       match=r'no message_hub.*use load_from') as info:
        load_resumable_checkpoint(path)
    assert info.value.reason == 'not_resumable'


def test_atomic_write_keeps_the_old_file_when_the_writer_dies(
        tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    atomic_write(path, b'old')

    def die(fd):
        raise KeyboardInterrupt  # as a signal arriving mid-write would

    monkeypatch.setattr(os, 'fsync', die)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b'new and longer')
    assert open(path, 'rb').read() == b'old'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp left


def test_atomic_write_keeps_umask_permissions(tmp_path):
    path = str(tmp_path / 'last_checkpoint')
    atomic_write(path, b'x')
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_stale_temp_files_are_recognised_by_name(tmp_path):
    stale = tmp_path / '.epoch_3.pth.4242-0badcafe.tmp'
    stale.write_bytes(b'half')
    for keep in ('epoch_3.pth', '.hidden', 'notes.tmp'):
        (tmp_path / keep).write_bytes(b'')
    assert remove_stale_temp_files(str(tmp_path)) == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == [
        '.hidden', 'epoch_3.pth', 'notes.tmp'
    ]


class Records(logging.Handler):
    """Collects what MMEngine's current logger is given."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def work_dir_with(tmp_path, epochs, latest):
    """Intact checkpoints for ``epochs``; ``last_checkpoint`` -> latest."""
    for epoch in epochs:
        torch.save(training_checkpoint(epoch),
                   str(tmp_path / f'epoch_{epoch}.pth'))
    (tmp_path / 'last_checkpoint').write_text(latest)
    return str(tmp_path)


def test_resume_uses_last_checkpoint_when_intact(tmp_path, warnings_logged):
    # epoch_9 is left over from another run: not this one's to resume.
    work_dir = work_dir_with(tmp_path, (1, 2, 9),
                             str(tmp_path / 'epoch_2.pth'))
    assert find_resumable_checkpoint(work_dir) == str(tmp_path / 'epoch_2.pth')
    assert warnings_logged == []


@pytest.mark.parametrize('kind', ['truncated', 'empty', 'garbage', 'crafted'])
def test_resume_skips_a_damaged_latest_checkpoint(tmp_path, warnings_logged,
                                                  kind):
    latest = str(tmp_path / 'epoch_3.pth')
    work_dir = work_dir_with(tmp_path, (1, 2), latest)
    os.replace(bad_file(kind, tmp_path), latest)
    assert find_resumable_checkpoint(work_dir) == str(tmp_path / 'epoch_2.pth')
    assert any(latest in message for message in warnings_logged)
    assert 'epoch_2.pth, the newest intact' in warnings_logged[-1]
    assert not (tmp_path / 'code_ran').exists()


def test_resume_with_empty_last_checkpoint_scans_the_work_dir(tmp_path):
    work_dir = work_dir_with(tmp_path, (4, 5), '')
    torch.save(training_checkpoint(7), str(tmp_path / 'best_mAP_epoch_7.pth'))
    assert find_resumable_checkpoint(work_dir) == str(tmp_path / 'epoch_5.pth')


def test_resume_with_nothing_intact_lists_every_file(tmp_path):
    latest = str(tmp_path / 'epoch_2.pth')
    work_dir = work_dir_with(tmp_path, (), latest)
    os.replace(bad_file('truncated', tmp_path), latest)
    os.replace(bad_file('empty', tmp_path), str(tmp_path / 'epoch_1.pth'))
    with pytest.raises(CheckpointFileError,
                       match=r'epoch_2.pth.*is truncated.*epoch_1.pth.*is '
                       r'empty.*Remove the damaged files'):
        find_resumable_checkpoint(work_dir)


def test_resume_without_last_checkpoint_starts_afresh(tmp_path):
    torch.save(training_checkpoint(1), str(tmp_path / 'epoch_1.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) is None
    assert osp.exists(str(tmp_path / 'epoch_1.pth'))
