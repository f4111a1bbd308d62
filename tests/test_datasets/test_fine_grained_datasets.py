"""Tests of the five dataset layouts, the image loader and check_dataset."""
import importlib.util
import logging
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import MMLogger
from mmpretrain.datasets import CUB
from PIL import Image

from conftest import REPO
from dataset_trees import (AIRCRAFT_VARIANTS, FOOD_LABELS, make_aircraft,
                           make_cub, make_food, make_nabirds, make_vegfru,
                           set_line, write_image, write_lines)
from mmqueryopt.datasets import (CUB200, BrokenImageError, ListFileError,
                                 LoadImageBGR, SplitSizeWarning)
from mmqueryopt.registry import DATASETS

# The tiny trees are far from the official sizes; the warning has its own
# tests below.
pytestmark = pytest.mark.filterwarnings(
    'ignore::mmqueryopt.datasets.SplitSizeWarning')

CUB_NAMES = ['001.Black_footed_Albatross', '002.Laysan_Albatross',
             '003.Sooty_Albatross']
NABIRDS_NAMES = ['Black-bellied Whistling-Duck', 'Mourning Dove',
                 'Red-tailed Hawk (Adult)']
VEGFRU_NAMES = [str(label) for label in range(292)]
UUID = '0000139e-21dc-4d0c-bfe1-4cae3c85c82'

# type, tree maker, split, labels, class names, first image, its list line
LAYOUTS = [
    ('CUB200', make_cub, 'train', [0, 1, 2, 2], CUB_NAMES,
     'images/001.Black_footed_Albatross/img_0001.jpg', 'images.txt:1'),
    ('CUB200', make_cub, 'test', [0, 1, 2], CUB_NAMES,
     'images/001.Black_footed_Albatross/img_0002.jpg', 'images.txt:2'),
    ('NABirds', make_nabirds, 'train', [1, 0, 2], NABIRDS_NAMES,
     f"images/0817/{UUID.replace('-', '')}a.jpg", 'images.txt:1'),
    ('NABirds', make_nabirds, 'test', [1, 0], NABIRDS_NAMES,
     f"images/0817/{UUID.replace('-', '')}b.jpg", 'images.txt:2'),
    ('FGVCAircraftHash', make_aircraft, 'train', [1, 2, 0, 0],
     AIRCRAFT_VARIANTS, 'data/images/0034309.jpg',
     'data/images_variant_trainval.txt:1'),
    ('FGVCAircraftHash', make_aircraft, 'test', [3, 2], AIRCRAFT_VARIANTS,
     'data/images/1200000.jpg', 'data/images_variant_test.txt:1'),
    ('Food101Hash', make_food, 'train', [1, 1, 0, 2], FOOD_LABELS,
     'images/apple_pie/1005649.jpg', 'meta/train.txt:1'),
    ('Food101Hash', make_food, 'test', [2, 0], FOOD_LABELS,
     'images/baby_back_ribs/44.jpg', 'meta/test.txt:1'),
    ('VegFru', make_vegfru, 'train', [0, 0, 200, 291], VEGFRU_NAMES,
     'veg200_images/Chinese_artichoke/v_01_01_0001.jpg',
     'vegfru_list/vegfru_train.txt:1'),
    ('VegFru', make_vegfru, 'test', [291, 0, 200], VEGFRU_NAMES,
     'fru92_images/yali_pear/f_09_05_0002.jpg',
     'vegfru_list/vegfru_test.txt:1'),
]


def build(type_name, root, split='train', **kwargs):
    return DATASETS.build(
        dict(type=type_name, data_root=str(root), split=split, **kwargs))


@pytest.mark.parametrize(
    'type_name,maker,split,labels,classes,first_image,first_line', LAYOUTS,
    ids=[f'{layout[0]}-{layout[2]}' for layout in LAYOUTS])
def test_layout(tmp_path, type_name, maker, split, labels, classes,
                first_image, first_line):
    root = maker(tmp_path)
    dataset = build(type_name, root, split)
    assert len(dataset) == len(labels)
    assert dataset.get_gt_labels().tolist() == labels
    assert list(dataset.metainfo['classes']) == classes
    info = dataset.get_data_info(0)
    assert info['img_path'] == str(root / first_image)
    assert info['list_line'] == f'{root}/{first_line}'
    assert info['sample_idx'] == 0


def test_splits_are_disjoint_and_complete(tmp_path):
    # Database and queries partition the images listed in images.txt.
    root = make_cub(tmp_path)
    paths = {
        split: {info['img_path'] for info in build('CUB200', root, split)}
        for split in ('train', 'test')
    }
    assert len(paths['train']) == 4 and len(paths['test']) == 3
    assert not paths['train'] & paths['test']
    assert {Path(p).name for p in paths['train']} == {
        'img_0001.jpg', 'img_0003.jpg', 'img_0005.jpg', 'img_0006.jpg'}


def test_registered_names_do_not_shadow_mmpretrain():
    assert DATASETS.get('CUB') is CUB
    assert DATASETS.get('CUB200') is CUB200


def test_pipeline_output(tmp_path):
    dataset = build(
        'Food101Hash', make_food(tmp_path),
        pipeline=[dict(type='LoadImageBGR'), dict(type='PackInputs')])
    packed = dataset[3]
    assert tuple(packed['inputs'].shape) == (3, 6, 8)
    assert packed['data_samples'].gt_label.tolist() == [2]
    assert packed['data_samples'].sample_idx == 3


def test_invalid_split(tmp_path):
    with pytest.raises(ValueError, match="got 'trainval'"):
        build('FGVCAircraftHash', make_aircraft(tmp_path), 'trainval')


def size_warnings(type_name, root):
    """Build and use the train split; return its size and size warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        dataset = build(type_name, root, check_images=False)
        dataset.get_gt_labels()
        dataset.get_data_info(0)
    return len(dataset), [
        str(w.message) for w in caught if w.category is SplitSizeWarning
    ]


def test_split_size_warning_once_with_gap(tmp_path):
    size, messages = size_warnings('CUB200', make_cub(tmp_path))
    assert size == 4 and len(messages) == 1
    assert "CUB200 split 'train' lists 4 images" in messages[0]
    assert 'official count is 5994 (5990 fewer)' in messages[0]


@pytest.mark.parametrize('num_lines,gap', [(6667, None), (6670, '3 more')])
def test_split_size_warning_official(tmp_path, num_lines, gap):
    # With check_images=False a full-size list needs no images.
    root = make_aircraft(tmp_path)
    write_lines(root / 'data/images_variant_trainval.txt',
                [f'{i:07d} F/A-18' for i in range(num_lines)])
    size, messages = size_warnings('FGVCAircraftHash', root)
    assert size == num_lines
    if gap is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert f'official count is 6667 ({gap})' in messages[0]


@pytest.mark.parametrize('type_name,maker,split,missing', [
    ('CUB200', make_cub, 'train', 'image_class_labels.txt'),
    ('NABirds', make_nabirds, 'test', 'train_test_split.txt'),
    ('NABirds', make_nabirds, 'train', 'classes.txt'),
    ('FGVCAircraftHash', make_aircraft, 'train', 'data/variants.txt'),
    ('Food101Hash', make_food, 'test', 'meta/test.txt'),
    ('VegFru', make_vegfru, 'train', 'vegfru_list/vegfru_train.txt'),
])
def test_missing_list_file(tmp_path, type_name, maker, split, missing):
    root = maker(tmp_path)
    (root / missing).unlink()
    with pytest.raises(FileNotFoundError) as info:
        build(type_name, root, split)
    assert f'List file not found: {root / missing} ' in str(info.value)


# type, maker, split, file to edit, line, new text,
# file:line the error must name (None: the edited one), message
BAD_LINES = [
    ('CUB200', make_cub, 'image_class_labels.txt', 3, '3 2 9', None,
     "expected 2 non-empty field(s) '<image id> <class id>', got '3 2 9'"),
    ('CUB200', make_cub, 'image_class_labels.txt', 2, '2 0', None,
     'class id 0 is not listed in'),
    ('CUB200', make_cub, 'image_class_labels.txt', 2, '2 201', None,
     'class id 201 is not listed in'),
    ('CUB200', make_cub, 'image_class_labels.txt', 2, '2 two', None,
     "expected an integer class id, got 'two'"),
    ('CUB200', make_cub, 'train_test_split.txt', 5, '5 2', None,
     "expected split flag 1 (train) or 0 (test), got '2'"),
    ('CUB200', make_cub, 'images.txt', 4, '3 x.jpg', None,
     "duplicate image id '3', first at line 3"),
    ('CUB200', make_cub, 'image_class_labels.txt', 7, '8 3',
     'images.txt:7', "image id '7' has no line in"),
    ('CUB200', make_cub, 'train_test_split.txt', 1, '9 1',
     'images.txt:1', "image id '1' has no line in"),
    ('NABirds', make_nabirds, 'image_class_labels.txt', 1, f'{UUID}a 23',
     None, 'class id 23 is not listed in'),
    ('FGVCAircraftHash', make_aircraft, 'data/images_variant_trainval.txt',
     2, '1025794', None, "expected 2 non-empty field(s)"),
    ('FGVCAircraftHash', make_aircraft, 'data/images_variant_trainval.txt',
     3, '0056978 F/A-19', None, "unknown variant 'F/A-19', not in"),
    ('FGVCAircraftHash', make_aircraft, 'data/variants.txt', 4, '707-320',
     None, "duplicate variant '707-320', first at line 2"),
    ('Food101Hash', make_food, 'meta/train.txt', 2, 'apple_pie', None,
     "expected 2 non-empty field(s) '<class>/<image id>'"),
    ('Food101Hash', make_food, 'meta/train.txt', 2, 'apple_pie/1/2', None,
     "expected 2 non-empty field(s) '<class>/<image id>', "
     "got 'apple_pie/1/2'"),
    ('Food101Hash', make_food, 'meta/train.txt', 3, 'pizza/123', None,
     "unknown class 'pizza': no name in"),
    ('Food101Hash', make_food, 'meta/labels.txt', 3, 'apple Pie', None,
     "class 'apple Pie' has the same folder 'apple_pie'"),
    ('VegFru', make_vegfru, 'vegfru_list/vegfru_train.txt', 3,
     'fru92_images/almond/f_01_01_0001.jpg 292', None,
     'label 292 is outside 0..291'),
    ('VegFru', make_vegfru, 'vegfru_list/vegfru_train.txt', 2, 'a.jpg -1',
     None, 'label -1 is outside 0..291'),
    ('VegFru', make_vegfru, 'vegfru_list/vegfru_train.txt', 1, 'a.jpg',
     None, "expected 2 non-empty field(s) '<image path> <label>'"),
]


@pytest.mark.parametrize(
    'type_name,maker,edited,lineno,text,where,message', BAD_LINES,
    ids=[f'{row[0]}-{row[2]}:{row[3]}' for row in BAD_LINES])
def test_bad_list_line(tmp_path, type_name, maker, edited, lineno, text,
                       where, message):
    root = maker(tmp_path)
    set_line(root / edited, lineno, text)
    with pytest.raises(ListFileError) as info:
        build(type_name, root)
    where = where or f'{edited}:{lineno}'
    assert str(info.value).startswith(f'{root / where}: {message}')


def test_missing_image_named_at_load_time(tmp_path):
    root = make_cub(tmp_path)
    image = root / 'images/002.Laysan_Albatross/img_0003.jpg'
    image.unlink()
    dataset = build('CUB200', root, pipeline=[dict(type='LoadImageBGR')],
                    check_images=False)
    assert len(dataset) == 4  # existence is left to the loader
    with pytest.raises(FileNotFoundError) as info:
        dataset[1]
    assert str(info.value) == (
        f'Image not found: {image} (listed at {root}/images.txt:3)')


def load(path, **kwargs):
    return LoadImageBGR(**kwargs)(dict(img_path=str(path)))


@pytest.mark.parametrize('mode,color,fmt,bgr,tolerance', [
    ('L', 77, 'PNG', (77, 77, 77), 0),
    ('LA', (90, 0), 'PNG', (90, 90, 90), 0),
    ('RGBA', (10, 20, 30, 0), 'PNG', (30, 20, 10), 0),  # alpha dropped
    ('CMYK', (0, 255, 255, 0), 'JPEG', (0, 0, 255), 3),  # red
    ('RGB', (10, 200, 30), 'JPEG', (30, 200, 10), 3),
])
def test_load_modes(tmp_path, mode, color, fmt, bgr, tolerance):
    path = write_image(tmp_path / f'img.{fmt.lower()}', color, (8, 6), mode,
                       fmt)
    results = load(path)
    img = results['img']
    assert img.dtype == np.uint8 and img.shape == (6, 8, 3)
    assert results['img_shape'] == results['ori_shape'] == (6, 8)
    assert np.abs(img.astype(int) - bgr).max() <= tolerance


def test_load_matches_mmcv_channel_order(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    path = tmp_path / 'noise.png'
    Image.fromarray(pixels).save(path)
    ours = load(path)['img']
    mmcv = LoadImageFromFile()(dict(img_path=str(path)))['img']
    assert np.array_equal(ours, mmcv)
    assert np.array_equal(ours[..., ::-1], pixels)


def truncated_jpeg(path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(pixels).save(path, 'JPEG')
    path.write_bytes(path.read_bytes()[:1500])
    return path


@pytest.mark.parametrize('content', ['truncated', 'garbage'])
def test_broken_image_raises_naming_file(tmp_path, content):
    path = tmp_path / 'broken.jpg'
    if content == 'truncated':
        truncated_jpeg(path)
    else:
        path.write_bytes(b'not an image at all')
    results = dict(img_path=str(path), list_line='meta/train.txt:7')
    with pytest.raises(BrokenImageError) as info:
        LoadImageBGR()(results)
    assert str(info.value).startswith(
        f'Cannot decode image {path} (listed at meta/train.txt:7): ')


def test_skip_broken_counts_and_logs(tmp_path):
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        loader = LoadImageBGR(skip_broken=True)
        assert loader(dict(img_path=str(truncated_jpeg(
            tmp_path / 'a.jpg')))) is None
        assert loader(dict(img_path=str(tmp_path / 'missing.jpg'))) is None
    finally:
        logger.removeHandler(handler)
    assert loader.num_skipped == 2
    assert len(messages) == 2
    assert messages[0].startswith(f'Cannot decode image {tmp_path}/a.jpg')
    assert messages[1] == (f'Image not found: {tmp_path}/missing.jpg; skipped '
                           '(2 skipped so far in this process)')


@pytest.mark.parametrize('test_mode', [False, True])
def test_skip_broken_in_dataset(tmp_path, test_mode):
    root = make_cub(tmp_path)
    truncated_jpeg(root / 'images/002.Laysan_Albatross/img_0003.jpg')
    dataset = build(
        'CUB200', root, test_mode=test_mode, check_images=False,
        pipeline=[dict(type='LoadImageBGR', skip_broken=True)])
    if test_mode:
        # MMEngine refuses a None sample at test time.
        with pytest.raises(Exception, match='should not get `None`'):
            dataset[1]
    else:
        # Training draws another index instead of the broken one.
        results = dataset[1]
        assert results['sample_idx'] != 1
        assert results['img'].shape == (6, 8, 3)


# check_dataset

def import_check_dataset():
    path = Path(REPO) / 'tools' / 'check_dataset.py'
    spec = importlib.util.spec_from_file_location('check_dataset', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules['check_dataset'] = module  # worker processes unpickle by name
    spec.loader.exec_module(module)
    return module


def write_config(tmp_path, root, type_name='CUB200'):
    config = tmp_path / 'config.py'
    pipeline = "[dict(type='LoadImageBGR'), dict(type='PackInputs')]"
    config.write_text(
        "default_scope = 'mmqueryopt'\n"
        f"dataset = dict(type='{type_name}', data_root=r'{root}', "
        f'pipeline={pipeline})\n'
        "train_dataloader = dict(dataset=dict(dataset, split='train'))\n"
        "val_dataloader = dict(dataset=dict(dataset, split='test'))\n")
    return str(config)


def run_check(capsys, *argv):
    status = import_check_dataset().main(list(argv))
    out = capsys.readouterr().out
    table = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] in ('train', 'test') and len(cells) == 11:
            table[cells[0]] = cells
    return status, table, out


def test_check_dataset_ok(tmp_path, capsys):
    config = write_config(tmp_path, make_cub(tmp_path / 'cub'))
    status, table, out = run_check(capsys, config)
    assert status == 0
    assert table['train'] == [
        'train', 'database', 'CUB200', '4', '5994', '-5990', '3/3', '0..2',
        '4', '0', '0']
    assert table['test'] == [
        'test', 'queries', 'CUB200', '3', '5794', '-5791', '3/3', '0..2',
        '3', '0', '0']
    assert out.rstrip().endswith('Result: OK')


def test_check_dataset_finds_missing_and_broken(tmp_path, capsys):
    root = make_food(tmp_path / 'food')
    (root / 'images/apple_pie/1014775.jpg').unlink()
    truncated_jpeg(root / 'images/baby_back_ribs/33.jpg')
    status, table, out = run_check(
        capsys, write_config(tmp_path, root, 'Food101Hash'), '--workers', '2')
    assert status == 1
    assert table['train'][-3:] == ['4', '1', '1']
    assert table['test'][-3:] == ['2', '0', '0']
    assert (f'train missing: Image not found: {root}/images/apple_pie/'
            f'1014775.jpg (listed at {root}/meta/train.txt:2)') in out
    assert f'train broken: Cannot decode image {root}/images/' in out
    assert out.rstrip().endswith(
        'Result: FAILED: 1 missing train images, 1 broken train images')


def test_check_dataset_sample_one_split(tmp_path, capsys):
    config = write_config(tmp_path, make_vegfru(tmp_path / 'vegfru'),
                          'VegFru')
    status, table, _ = run_check(capsys, config, '--split', 'train',
                                 '--sample', '2')
    assert status == 0
    assert list(table) == ['train']
    assert table['train'][3:] == ['4', '29200', '-29196', '3/292', '0..291',
                                  '2', '0', '0']


def test_check_dataset_reports_orphan_query_classes(tmp_path, capsys):
    root = make_aircraft(tmp_path / 'aircraft')
    status, _, out = run_check(
        capsys, write_config(tmp_path, root, 'FGVCAircraftHash'))
    assert status == 0
    assert 'note: 1 query classes have no database image (labels [3])' in out


def test_check_dataset_unbuildable(tmp_path, capsys):
    root = make_nabirds(tmp_path / 'nabirds')
    set_line(root / 'train_test_split.txt', 2, f'{UUID}b 7')
    status, table, out = run_check(
        capsys, write_config(tmp_path, root, 'NABirds'))
    assert status == 2 and table == {}
    assert re.search(
        r'Cannot build the train dataset: .*train_test_split.txt:2: '
        r"expected split flag 1 \(train\) or 0 \(test\), got '7'", out)
