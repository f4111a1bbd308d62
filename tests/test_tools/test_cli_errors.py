"""A user's mistakes in the config, --cfg-options or the data: one line.

The tools run as a user runs them (subprocesses): exit status 1, no
traceback, one ``error:`` line naming the file or key, printed before the
runner logs anything, and nothing written. Each subprocess imports torch and
MMPretrain (seconds), so every case runs once, spread over the three tools;
the rules of :func:`read_config` are also checked in-process.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope

from conftest import REPO, tiny_digits_cfg
from dataset_trees import make_cub, write_image
from mmqueryopt.engine.cli import exit_on_user_error
from mmqueryopt.engine.config_options import (ConfigError, accepted_arguments,
                                              read_config)
from mmqueryopt.registry import MODELS

CUB_CONFIG = 'configs/queryopt_cub_12bit.py'
DIGITS_CONFIG = 'configs/queryopt/queryopt_digits_12bit.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def fail(*args):
    """Run a tool that must refuse; return its one error line."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    # Nothing before the error but the image check's own line: no runner
    # log, no config dump.
    assert not [
        line for line in proc.stdout.splitlines()
        if not re.search(r'INFO - checked \d+ images in ', line)
    ], proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def data_root_options(root):
    return ['--cfg-options'] + [
        f'{loader}.dataset.data_root={root}' for loader in LOADERS
    ]


@pytest.mark.parametrize('tool,case', [
    ('tools/train.py', 'missing'),
    ('tools/test.py', 'syntax'),
    ('tools/encode.py', 'syntax'),
])
def test_unreadable_config_file(tool, case, tmp_path):
    config = tmp_path / 'my_config.py'
    if case == 'syntax':
        config.write_text("_base_ = ['x.py']\nmodel = dict(\n"
                          "    type='HashRetriever'\n    head=dict())\n")
    extra = [] if tool == 'tools/train.py' else ['x.pth']
    if tool == 'tools/encode.py':
        extra += ['--out', str(tmp_path / 'codes.npz')]
    line = fail(tool, str(config), *extra)
    if case == 'missing':
        assert line == f'error: config file not found: {config}'
    else:
        # Python points at the line where the dict's arguments go wrong.
        assert line.startswith(f'error: config {config}, line 3: ')
        assert 'comma' in line
    assert not (tmp_path / 'codes.npz').exists()


def test_train_without_the_dataset_says_where_to_get_it(tmp_path):
    empty = tmp_path / 'CUB_200_2011'
    empty.mkdir()
    line = fail('tools/train.py', CUB_CONFIG, '--work-dir',
                str(tmp_path / 'work'), *data_root_options(empty))
    # What is missing, under which keys, where to get it, how to check.
    assert f'{empty}{os.sep}' in line and 'not found' in line
    assert 'train_dataloader.dataset' in line
    assert 'docs/datasets.md' in line
    assert f'tools/check_dataset.py {CUB_CONFIG}' in line
    assert not (tmp_path / 'work').exists()


def test_encode_new_top_level_key_needs_the_flag_then_the_data_check(
        tmp_path):
    """--allow-new-keys lets the typo through; the missing data root is
    then the error (after the model, before any image is read)."""
    ckpt = str(tmp_path / 'model.pth')
    cfg = read_config(osp.join(REPO, DIGITS_CONFIG))
    init_default_scope('mmqueryopt')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
    args = ['tools/encode.py', DIGITS_CONFIG, ckpt, '--out',
            str(tmp_path / 'codes.npz')]
    missing = str(tmp_path / 'nowhere')
    options = data_root_options(missing) + ['randomnes.seed=1']
    line = fail(*args, *options)
    assert line == ("error: --cfg-options randomnes.seed: the config has no "
                    "key 'randomnes' (closest: 'randomness'); to add it "
                    'anyway, pass --allow-new-keys')
    line = fail(*args, '--allow-new-keys', *options)
    assert 'randomnes' not in line
    assert f'data root not found: {missing}' in line
    assert not (tmp_path / 'codes.npz').exists()


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_class_folders_without_a_split_folder(tool, tmp_path):
    root = tmp_path / 'photos'
    # test.py reads only the queries: there the test/ folder is missing.
    present = 'test' if tool == 'tools/train.py' else 'train'
    write_image(root / present / 'cat' / 'a.jpg')
    extra = []
    if tool == 'tools/test.py':
        # A readable checkpoint, so that the data is what fails.
        extra = [str(tmp_path / 'model.pth')]
        torch.save({'state_dict': {}}, extra[0])
    line = fail(tool, 'configs/queryopt/queryopt_custom_12bit.py', *extra,
                '--work-dir', str(tmp_path / 'work'),
                *data_root_options(root))
    missing = 'train' if tool == 'tools/train.py' else 'test'
    assert f"no folder '{root / missing}'" in line, line
    assert 'docs/datasets.md' in line
    assert not (tmp_path / 'work').exists()


def test_broken_images_stop_training_before_it_starts(tmp_path):
    root = make_cub(tmp_path / 'cub')
    images = root / 'images' / '001.Black_footed_Albatross'
    (images / 'img_0001.jpg').write_bytes(b'')  # train split
    jpeg = (images / 'img_0002.jpg').read_bytes()  # test split
    (images / 'img_0002.jpg').write_bytes(jpeg[:len(jpeg) // 2])
    work = tmp_path / 'work'
    cfg = tiny_digits_cfg(str(root), str(work), rounds=1, num_samples=4)
    cfg.default_hooks.checkpoint.interval = 1  # would save after round 1
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    line = fail('tools/train.py', config)
    assert 'img_0001.jpg' in line and 'img_0002.jpg' in line, line
    assert 'train_dataloader.dataset' in line
    assert not work.exists() or not list(work.rglob('*.pth'))


def test_nested_typo_names_the_key_and_the_type(tmp_path):
    line = fail('tools/test.py', DIGITS_CONFIG, str(tmp_path / 'x.pth'),
                '--cfg-options', 'model.head.code_lenght=24')
    assert line == ("error: --cfg-options model.head.code_lenght: "
                    "QueryHashHead takes no argument 'code_lenght' "
                    "(closest: 'code_length')")
    line = fail('tools/encode.py', DIGITS_CONFIG, str(tmp_path / 'x.pth'),
                '--out', str(tmp_path / 'c.npz'), '--cfg-options',
                'optim_wrapper.optimizer.lrr=0.1')
    assert line == ("error: --cfg-options optim_wrapper.optimizer.lrr: "
                    "AdamW takes no argument 'lrr' (closest: 'lr')")


# In-process: the rules of read_config, one override at a time.
@pytest.mark.parametrize('option,message', [
    ('randomness.sed=1', "randomness.sed: randomness (read by "
     "Runner.set_randomness) takes no argument 'sed' (closest: 'seed')"),
    ('train_dataloader.dataset.data_rooot=x', 'train_dataloader.dataset.'
     "data_rooot: CUB200 takes no argument 'data_rooot' (closest: "
     "'data_root')"),
    # ResNet_CIFAR's **kwargs go to ResNet: its arguments count.
    ('model.backbone.stem_channel=8', 'model.backbone.stem_channel: '
     "ResNet_CIFAR takes no argument 'stem_channel' (closest: "
     "'stem_channels')"),
    # The type as the config names it (scoped, for mmpretrain.get_model).
    ('model.hed.code_length=8', 'model.hed.code_length: '
     "mmqueryopt.HashRetriever takes no argument 'hed' (closest: 'head')"),
    ('train_cfg.max_epoch=1', 'train_cfg.max_epoch: train_cfg (read by '
     "EpochBasedTrainLoop) takes no argument 'max_epoch' (closest: "
     "'max_epochs')"),
    ('train_dataloader.dataset.pipeline.1.scal=8', 'train_dataloader.'
     "dataset.pipeline.1.scal: RandomResizedCrop takes no argument 'scal' "
     "(closest: 'scale')"),
    ('custom_hooks.9.priority=1', 'custom_hooks.9.priority: custom_hooks is '
     "a list of 6; expected an index 0..5 after it, got '9'"),
    ('train_cfg.max_epochs.x=1', 'train_cfg.max_epochs.x: '
     'train_cfg.max_epochs is 10, which has no keys'),
    ('env_cfg.mp_cfg.start=1', 'env_cfg.mp_cfg.start: env_cfg.mp_cfg (read '
     "by set_multi_processing) takes no argument 'start'"),
])
def test_read_config_refuses(option, message):
    key, value = option.split('=')
    with pytest.raises(ConfigError) as error:
        read_config(osp.join(REPO, DIGITS_CONFIG), {key: value})
    assert str(error.value) == f'--cfg-options {message}'


def test_read_config_accepts_keys_their_readers_take():
    options = {
        'visualizer.tensorboard': True,  # exists
        'train_dataloader.dataset.data_root': '/data/digits',  # exists
        'randomness.diff_rank_seed': True,  # Runner.set_randomness
        'val_cfg.fp16': True,  # ValLoop
        'env_cfg.dist_cfg.timeout': 60,  # torch's init_process_group
        'train_dataloader.pin_memory': True,  # DataLoader
        'optim_wrapper.clip_grad': None,  # OptimWrapper
        'optim_wrapper.paramwise_cfg': {},  # its constructor
        'model.head.dropout': 0.1,  # QueryHashHead
        'train_dataloader.dataset.skip_broken': True,  # HashingDataset
        'train_dataloader.dataset.indices': 10,  # MMPretrain's BaseDataset
        'custom_hooks.0.priority': 'LOW',  # read by register_hook
    }
    cfg = read_config(osp.join(REPO, DIGITS_CONFIG), dict(options))
    assert cfg.randomness.diff_rank_seed is True
    assert cfg.train_dataloader.dataset.indices == 10
    assert cfg.env_cfg.dist_cfg == dict(backend='nccl', timeout=60)
    # The flag adds a key nothing reads, as MMEngine alone would.
    cfg = read_config(osp.join(REPO, DIGITS_CONFIG), {'randomnes.seed': 1},
                      new_keys=True)
    assert cfg.randomnes.seed == 1 and cfg.randomness.seed == 42


def test_accepted_arguments_follow_kwargs_only_up_to_super():
    from mmengine.hooks import CheckpointHook
    from mmengine.optim import AmpOptimWrapper

    # AmpOptimWrapper(**kwargs) -> OptimWrapper.__init__.
    assert {'loss_scale', 'optimizer', 'clip_grad'} <= accepted_arguments(
        AmpOptimWrapper)
    # CheckpointHook keeps its **kwargs for save_checkpoint: can't tell.
    assert accepted_arguments(CheckpointHook) is None

    def func(a, *, b=1):
        pass

    assert accepted_arguments(func) == {'a', 'b'}


def test_build_time_typo_is_one_line():
    """A typo in the config file itself surfaces when MMEngine builds the
    type: still one line, naming the type and the closest argument."""
    init_default_scope('mmqueryopt')
    with pytest.raises(SystemExit) as exit_:
        with exit_on_user_error():
            MODELS.build(dict(type='QueryHashHead', code_lenght=12))
    assert str(exit_.value) == (
        "error: QueryHashHead takes no argument 'code_lenght' (closest: "
        "'code_length') (a key of its dict in the config or --cfg-options)")
    # Any other TypeError is a bug: it keeps its traceback.
    with pytest.raises(TypeError):
        with exit_on_user_error():
            len(3)


def test_model_config_error_is_one_line():
    """A part that cannot work with its configuration (SEMICON's split of
    10 bits, more label classes than CSQ's centres) raises
    ModelConfigError: the tools print its message as one line."""
    init_default_scope('mmqueryopt')
    with pytest.raises(SystemExit) as exit_:
        with exit_on_user_error():
            MODELS.build(dict(type='GlobalLocalHashHead', code_length=10))
    assert str(exit_.value).startswith('error: ')
    assert 'model.head.code_length=10' in str(exit_.value)
    from mmqueryopt.models import DatabaseView
    loss = MODELS.build(dict(type='CSQLoss', num_classes=3, code_length=12))
    with pytest.raises(SystemExit) as exit_:
        with exit_on_user_error():
            loss(torch.zeros(1, 12), DatabaseView(labels=torch.tensor([7])))
    assert 'model.loss.num_classes=3' in str(exit_.value)
