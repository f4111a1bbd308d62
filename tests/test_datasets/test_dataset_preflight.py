"""Tests of the data checks before a run: missing files, broken images,
skip_broken, the check cache and check_data on whole configs."""
import json
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from PIL import Image

from conftest import REPO
from dataset_trees import make_cub, make_food, write_image
from mmqueryopt.datasets import (BrokenImageError, ClassFolders,
                                 DataNotFoundError, DatasetError,
                                 LoadImageBGR, check_data)
from mmqueryopt.datasets import image_check
from mmqueryopt.registry import DATASETS

REPO = Path(REPO)
CUB_CONFIG = str(REPO / 'configs/queryopt_cub_12bit.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

pytestmark = pytest.mark.filterwarnings(
    'ignore::mmqueryopt.datasets.SplitSizeWarning')


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache for each test, and no results kept in memory."""
    folder = tmp_path / 'cache'
    monkeypatch.setenv('MMQUERYOPT_CACHE_DIR', str(folder))
    monkeypatch.setattr(image_check, '_checked', {})
    return folder


def noise(size=(64, 64), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def truncated_jpeg(path: Path) -> Path:
    Image.fromarray(noise()).save(path, 'JPEG')
    path.write_bytes(path.read_bytes()[:1500])
    return path


def truncated_png(path: Path) -> Path:
    Image.fromarray(noise()).save(path, 'PNG')
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])
    return path


def cub_config(root) -> Config:
    cfg = Config.fromfile(CUB_CONFIG)
    for loader in LOADERS:
        cfg[loader].dataset.data_root = str(root)
    return cfg


def check_error(cfg) -> str:
    with pytest.raises(DatasetError) as info:
        check_data(cfg)
    message = str(info.value)
    assert '\n' not in message
    return message


def count_checks(monkeypatch):
    """Count the files image_problem opens from now on."""
    opened = []
    original = image_check.image_problem

    def counting(path, full=False):
        opened.append(path)
        return original(path, full)

    monkeypatch.setattr(image_check, 'image_problem', counting)
    return opened


# image_problem: what the check calls broken is what the loader rejects


def test_image_problem_cases(tmp_path):
    good_jpeg = tmp_path / 'good.jpg'
    Image.fromarray(noise()).save(good_jpeg, 'JPEG')
    padded = tmp_path / 'padded.jpg'
    padded.write_bytes(good_jpeg.read_bytes() + b'\0' * 10)
    trailing = tmp_path / 'trailing.jpg'  # decodes, fails the fast test
    trailing.write_bytes(good_jpeg.read_bytes() + b'camera data')
    cmyk = write_image(tmp_path / 'cmyk.jpg', (0, 255, 255, 0), mode='CMYK')
    gray_png = write_image(tmp_path / 'gray.png', 77, mode='L', fmt='PNG')
    bmp = write_image(tmp_path / 'img.bmp', fmt='BMP')
    for path in (good_jpeg, padded, trailing, cmyk, gray_png, bmp):
        assert image_check.image_problem(str(path)) is None, path
        LoadImageBGR()(dict(img_path=str(path)))

    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    text = tmp_path / 'text.jpg'
    text.write_text('not an image at all')
    broken = {
        'missing': tmp_path / 'missing.jpg',
        'empty file': empty,
        'not an image file': text,
        'cannot be decoded: image file is truncated':
        truncated_jpeg(tmp_path / 'cut.jpg'),
        'cannot be decoded: ': truncated_png(tmp_path / 'cut.png'),
    }
    for reason, path in broken.items():
        assert image_check.image_problem(str(path)).startswith(reason), path
        assert image_check.image_problem(str(path), full=True).startswith(
            reason)
        with pytest.raises((FileNotFoundError, BrokenImageError)):
            LoadImageBGR()(dict(img_path=str(path)))


def test_fast_check_does_not_decode(tmp_path, monkeypatch):
    path = tmp_path / 'good.jpg'
    Image.fromarray(noise()).save(path, 'JPEG')
    decoded = []
    monkeypatch.setattr(image_check, 'decode_bgr', decoded.append)
    assert image_check.image_problem(str(path)) is None
    assert decoded == []
    assert image_check.image_problem(str(path), full=True) is None
    assert len(decoded) == 1


# Missing files


def test_missing_root_names_key_source_and_check_tool(tmp_path):
    message = check_error(cub_config(tmp_path / 'nowhere'))
    assert message.startswith(
        'train_dataloader.dataset.data_root, val_dataloader.dataset.'
        'data_root, test_dataloader.dataset.data_root: CUB200 data root '
        f'not found: {tmp_path}/nowhere')
    assert 'https://www.vision.caltech.edu/datasets/cub_200_2011/' in message
    assert 'docs/datasets.md' in message
    assert f'python tools/check_dataset.py {CUB_CONFIG}' in message


def test_missing_list_file(tmp_path):
    root = make_cub(tmp_path / 'cub')
    (root / 'images.txt').unlink()
    message = check_error(cub_config(root))
    assert f'List file not found: {root}/images.txt' in message
    assert message.startswith('train_dataloader.dataset, ')
    # Also without check_data, from the dataset alone, and still a
    # FileNotFoundError for code that catches that.
    with pytest.raises(DataNotFoundError) as info:
        DATASETS.build(dict(type='CUB200', data_root=str(root)))
    assert isinstance(info.value, FileNotFoundError)
    assert 'https://www.vision.caltech.edu' in str(info.value)


def test_missing_image_folder_is_said_once(tmp_path):
    root = make_food(tmp_path / 'food')
    shutil.rmtree(root / 'images')
    message = check_error(Config(dict(
        default_scope='mmqueryopt',
        train_dataloader=dict(dataset=dict(
            type='Food101Hash', data_root=str(root))))))
    assert message.startswith('train_dataloader.dataset: Food101Hash image '
                              f'folder not found: {root}/images; get '
                              'Food-101 from https://data.vision.ee.ethz.ch')


def class_tree(root: Path, splits=('train', 'test')) -> Path:
    for split in splits:
        for name in ('cat', 'dog'):
            for i in range(2):
                write_image(root / split / name / f'{i}.png', fmt='PNG')
    return root


def folders_config(root) -> Config:
    dataset = dict(type='ClassFolders', data_root=str(root))
    return Config(dict(
        default_scope='mmqueryopt',
        train_dataloader=dict(dataset=dict(dataset, split='train')),
        val_dataloader=dict(dataset=dict(dataset, split='test'))))


def test_class_folders_without_train(tmp_path):
    root = class_tree(tmp_path / 'photos', splits=('test', ))
    message = check_error(folders_config(root))
    assert message.startswith(
        f"train_dataloader.dataset: no folder '{root}/train': ClassFolders "
        'reads data_root/train/<class>/<images>')
    assert 'docs/datasets.md' in message
    assert 'python tools/check_dataset.py CONFIG' in message
    message = check_error(folders_config(tmp_path / 'nowhere'))
    assert message.startswith(
        'train_dataloader.dataset.data_root, val_dataloader.dataset.'
        f'data_root: ClassFolders data root not found: {tmp_path}/nowhere')


# Broken images


def break_cub(root: Path):
    """Three broken train images (ids 1, 3, 5) and one test image (id 2)."""
    images = root / 'images'
    (images / '001.Black_footed_Albatross/img_0001.jpg').write_bytes(b'')
    truncated_jpeg(images / '002.Laysan_Albatross/img_0003.jpg')
    (images / '003.Sooty_Albatross/img_0005.jpg').write_text('hello')
    (images / '001.Black_footed_Albatross/img_0002.jpg').write_text('hi')
    return images


def test_broken_images_of_every_split_in_one_message(tmp_path):
    root = make_cub(tmp_path / 'cub')
    images = break_cub(root)
    message = check_error(cub_config(root))
    assert message.startswith(
        "train_dataloader.dataset: CUB200 split 'train': 3 of 4 images "
        f'would not load: {images}/001.Black_footed_Albatross/img_0001.jpg '
        f'(empty file, listed at {root}/images.txt:1), '
        f'{images}/002.Laysan_Albatross/img_0003.jpg (cannot be decoded: '
        'image file is truncated')
    assert (f'{images}/003.Sooty_Albatross/img_0005.jpg (not an image file, '
            f'listed at {root}/images.txt:5)') in message
    assert ("val_dataloader.dataset, test_dataloader.dataset: CUB200 split "
            f"'test': 1 of 3 images would not load: {images}/001.Black_"
            'footed_Albatross/img_0002.jpg (not an image file, listed at '
            f'{root}/images.txt:2)') in message
    assert "skip_broken=True" in message
    assert message.count('https://www.vision.caltech.edu') == 1
    assert message.endswith(
        f'`python tools/check_dataset.py {CUB_CONFIG}` checks a whole tree')


def test_broken_image_found_when_built_without_tools(tmp_path):
    root = make_cub(tmp_path / 'cub')
    truncated_png(root / 'images/003.Sooty_Albatross/img_0007.jpg')
    with pytest.raises(DatasetError) as info:
        DATASETS.build(dict(type='CUB200', data_root=str(root), split='test'))
    assert str(info.value).startswith(
        "CUB200 split 'test': 1 of 3 images would not load: "
        f'{root}/images/003.Sooty_Albatross/img_0007.jpg (cannot be decoded')


def test_class_folders_broken_png(tmp_path):
    root = class_tree(tmp_path / 'photos')
    truncated_png(root / 'test/dog/1.png')
    message = check_error(folders_config(root))
    assert message.startswith(
        "val_dataloader.dataset: ClassFolders split 'test': 1 of 4 images "
        f'would not load: {root}/test/dog/1.png (cannot be decoded')


def test_many_broken_images_listed_in_a_file(tmp_path, cache_dir):
    root = make_food(tmp_path / 'food')
    lines = [f'apple_pie/{i}' for i in range(9)]
    (root / 'meta/train.txt').write_text(''.join(f'{x}\n' for x in lines))
    for line in lines[:8]:
        (root / 'images' / f'{line}.jpg').parent.mkdir(exist_ok=True)
        (root / 'images' / f'{line}.jpg').write_bytes(b'')
    write_image(root / 'images/apple_pie/8.jpg')
    with pytest.raises(DatasetError) as info:
        DATASETS.build(dict(type='Food101Hash', data_root=str(root)))
    message = str(info.value)
    named = [f'{root}/images/apple_pie/{i}.jpg (empty file, listed at '
             f'{root}/meta/train.txt:{i + 1})' for i in range(8)]
    assert f'8 of 9 images would not load: {", ".join(named[:5])} and 3 ' \
        'more (all listed in ' in message
    listing = message.split('(all listed in ')[1].split(')')[0]
    assert Path(listing).parent == cache_dir / 'image_check'
    assert Path(listing).read_text().splitlines() == named


def names(dataset):
    return [Path(dataset.get_data_info(i)['img_path']).name
            for i in range(len(dataset))]


def test_skip_broken_leaves_out_and_logs(tmp_path):
    root = make_cub(tmp_path / 'cub')
    images = break_cub(root)
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        train = DATASETS.build(
            dict(type='CUB200', data_root=str(root), skip_broken=True))
        test = DATASETS.build(
            dict(type='CUB200', data_root=str(root), split='test',
                 skip_broken=True))
    finally:
        logger.removeHandler(handler)
    assert names(train) == ['img_0006.jpg']
    assert train.get_gt_labels().tolist() == [2]
    assert names(test) == ['img_0004.jpg', 'img_0007.jpg']
    assert len(messages) == 2
    assert messages[0].startswith("CUB200 split 'train': 3 of 4 images "
                                  'would not load: ')
    for name in ('001.Black_footed_Albatross/img_0001.jpg',
                 '002.Laysan_Albatross/img_0003.jpg',
                 '003.Sooty_Albatross/img_0005.jpg'):
        assert f'{images}/{name}' in messages[0]
    assert messages[0].endswith('; left out (skip_broken=True)')
    assert f'{images}/001.Black_footed_Albatross/img_0002.jpg' in messages[1]


def test_skip_broken_with_nothing_left_fails(tmp_path):
    root = class_tree(tmp_path / 'photos')
    for path in (root / 'test').rglob('*.png'):
        path.write_bytes(b'')
    with pytest.raises(DatasetError, match='4 of 4 images would not load.*'
                       ': no image left'):
        ClassFolders(str(root), 'test', skip_broken=True)


# The cache


def test_second_check_opens_nothing_and_edits_are_rechecked(
        tmp_path, monkeypatch, cache_dir):
    root = make_cub(tmp_path / 'cub')
    cfg = cub_config(root)
    opened = count_checks(monkeypatch)
    check_data(cfg)
    assert len(opened) == 7  # 4 train + 3 test images, each once
    check_data(cfg)
    assert len(opened) == 7  # this process's results
    monkeypatch.setattr(image_check, '_checked', {})
    check_data(cfg)
    assert len(opened) == 7  # the file's, as in a second start
    (cache_file, ) = (cache_dir / 'image_check').glob('*.json')
    cached = json.loads(cache_file.read_text())
    assert cached['data_root'] == str(root)
    assert len(cached['files']) == 7  # both splits kept

    # An edit changes the size (and mtime): that file alone is checked.
    edited = root / 'images/003.Sooty_Albatross/img_0007.jpg'
    truncated_jpeg(edited)
    message = check_error(cfg)
    assert opened[7:] == [str(edited)]
    assert f'{edited} (cannot be decoded: image file is truncated' in message
    # The same size with a new mtime is checked again too.
    write_image(edited)
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    check_data(cfg)
    assert opened[8:] == [str(edited)]


@pytest.mark.parametrize('content', [
    '{"version": 1, "files": {trunc', '[]', '{"version": 1, "files": []}'])
def test_unreadable_cache_is_rebuilt(tmp_path, monkeypatch, content):
    root = make_cub(tmp_path / 'cub')
    path = Path(image_check.cache_file(str(root)))
    path.parent.mkdir(parents=True)
    path.write_text(content)
    opened = count_checks(monkeypatch)
    DATASETS.build(dict(type='CUB200', data_root=str(root)))
    assert len(opened) == 4
    assert len(json.loads(path.read_text())['files']) == 4


def test_pool_gives_the_same_results(tmp_path, monkeypatch):
    root = make_cub(tmp_path / 'cub')
    break_cub(root)
    paths = sorted(str(p) for p in (root / 'images').rglob('*.jpg'))
    serial = image_check.find_problems(paths, str(root), workers=1)
    monkeypatch.setattr(image_check, '_checked', {})
    monkeypatch.setenv('MMQUERYOPT_CACHE_DIR', str(tmp_path / 'other'))
    monkeypatch.setattr(image_check, 'PARALLEL_MIN_FILES', 1)
    parallel = image_check.find_problems(paths, str(root), workers=2)
    assert len(serial) == 4 and parallel == serial


# Whole configs


def test_digits_config_passes_on_a_healthy_tree(digits_root, monkeypatch):
    cfg = Config.fromfile(
        str(REPO / 'configs/queryopt/queryopt_digits_12bit.py'))
    for loader in LOADERS:
        cfg[loader].dataset.data_root = digits_root
    # In this process, where the count sees them.
    monkeypatch.setattr(image_check, 'PARALLEL_MIN_FILES', 10**9)
    opened = count_checks(monkeypatch)
    assert check_data(cfg) is None
    assert len(opened) == 1437 + 360
    # The digits borrow CUB's layout: the hint is not CUB's download page.
    cfg = Config.fromfile(
        str(REPO / 'configs/queryopt/queryopt_digits_12bit.py'))
    cfg.train_dataloader.dataset.data_root = digits_root + '_missing'
    message = check_error(cfg)
    assert message.startswith('train_dataloader.dataset.data_root: CUB200 '
                              f'data root not found: {digits_root}_missing')
    assert 'export the digits' in message and 'caltech' not in message


def test_wrapped_dataset_is_checked(tmp_path):
    root = make_cub(tmp_path / 'cub')
    break_cub(root)
    cfg = Config(dict(
        default_scope='mmqueryopt',
        train_dataloader=dict(dataset=dict(
            type='RepeatDataset', times=2, dataset=dict(
                type='CUB200', data_root=str(root),
                pipeline=[dict(type='NoSuchTransform')])))))
    message = check_error(cfg)
    assert message.startswith(
        "train_dataloader.dataset: CUB200 split 'train': 3 of 4 images")


# tools/check_dataset.py, run as a user does


def run_check_dataset(tmp_path, root, *args):
    config = tmp_path / 'config.py'
    config.write_text(
        "default_scope = 'mmqueryopt'\n"
        f"dataset = dict(type='CUB200', data_root=r'{root}', "
        "pipeline=[dict(type='LoadImageBGR')])\n"
        "train_dataloader = dict(dataset=dict(dataset, split='train'))\n"
        "val_dataloader = dict(dataset=dict(dataset, split='test'))\n")
    return subprocess.run(
        [sys.executable, 'tools/check_dataset.py', str(config), *args],
        cwd=REPO, capture_output=True, text=True, env=dict(os.environ))


def test_check_dataset_tool_lists_broken_images(tmp_path):
    root = make_cub(tmp_path / 'cub')
    images = break_cub(root)
    result = run_check_dataset(tmp_path, root)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr + result.stdout
    assert ('train broken: Cannot decode image '
            f'{images}/001.Black_footed_Albatross/img_0001.jpg (listed at '
            f'{root}/images.txt:1): empty file') in result.stdout
    assert result.stdout.rstrip().endswith(
        'Result: FAILED: 3 broken train images, 1 broken test images')


def test_check_dataset_tool_missing_root(tmp_path):
    result = run_check_dataset(tmp_path, tmp_path / 'nowhere')
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr + result.stdout
    (line, ) = [x for x in result.stdout.splitlines() if 'Cannot' in x]
    assert line.startswith('Cannot build the train dataset: data_root: '
                           f'CUB200 data root not found: {tmp_path}/nowhere')
    assert osp.basename(str(tmp_path / 'config.py')) in line
