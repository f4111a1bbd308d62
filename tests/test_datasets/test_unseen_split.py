"""The seen/unseen class split (``unseen_ratio``, ``subset``): which classes
each dataset type holds out, DSH_Analysis's counts and rounding, the sizes
of the seen and unseen sets, no unseen class in training, and one-line
errors for a ratio that leaves a split empty."""
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO
from dataset_trees import (_id_tables, make_aircraft, make_cub, make_food,
                           make_nabirds, make_vegfru)
from mmqueryopt.datasets import (CUB200, DatasetError, FGVCAircraftHash,
                                 Food101Hash, NABirds, VegFru)
from mmqueryopt.datasets.class_split import (ClassSplitError, class_split,
                                             num_unseen_classes)

# DSH_Analysis's set_flag.py: (classes, {ZS %: unseen classes}), the
# baselines facts' list.
DSH_COUNTS = {
    'CUB': (200, {5: 10, 15: 30, 25: 50}),
    'Aircraft': (100, {5: 5, 15: 15, 25: 25}),
    'Food101': (101, {5: 5, 15: 15, 25: 25}),
    'NABirds': (555, {5: 27, 15: 83, 25: 138}),
    'Stanford Dogs': (120, {5: 6, 15: 18, 25: 30}),
}
# data/vegfruzs.py: two thirds of the unseen classes from the end of the
# 200 vegetables, one third from the end of the 92 fruits.
VEGFRU_GROUPS = ((200, 2), (92, 1))


class DSHVegFru(VegFru):
    """VegFru with DSH's vegetable/fruit groups (the line proposed for
    mmqueryopt/datasets/vegfru.py)."""
    UNSEEN_GROUPS = VEGFRU_GROUPS


class PlainVegFru(VegFru):
    """VegFru under the one-group rule: its last classes are unseen."""
    UNSEEN_GROUPS = None


@pytest.mark.parametrize('dataset', sorted(DSH_COUNTS))
def test_dsh_counts_are_the_last_classes(dataset):
    num_classes, counts = DSH_COUNTS[dataset]
    for percent, unseen in counts.items():
        split = class_split(num_classes, percent / 100)
        assert (split.num_seen, split.num_unseen) == (num_classes - unseen,
                                                      unseen)
        # The last classes of the label order; labels keep their values.
        assert split.unseen_labels == tuple(
            range(num_classes - unseen, num_classes))
        assert split.is_identity


def test_vegfru_takes_two_thirds_vegetables_one_third_fruits():
    assert VegFru.UNSEEN_GROUPS == VEGFRU_GROUPS
    for percent, veg, fruit in ((5, 10, 5), (15, 30, 15), (25, 50, 25)):
        split = class_split(292, percent / 100, VEGFRU_GROUPS)
        assert split.num_unseen == veg + fruit  # 15 / 45 / 75
        assert split.num_seen == 292 - veg - fruit  # 277 / 247 / 217
        # DSH's order: known vegetables, known fruits, unseen vegetables,
        # unseen fruits.
        assert split.order == (
            tuple(range(200 - veg)) + tuple(range(200, 292 - fruit))
            + tuple(range(200 - veg, 200)) + tuple(range(292 - fruit, 292)))


def test_rounding_is_floor_then_up_to_the_shares():
    # floor, not round: NABirds 0.05 x 555 = 27.75 -> 27.
    assert num_unseen_classes(555, 0.05) == 27
    assert num_unseen_classes(555, 0.25) == 138
    # Products a hair below the integer stay on it.
    assert 0.29 * 100 < 29 and num_unseen_classes(100, 0.29) == 29
    assert num_unseen_classes(200, 0.15) == 30
    # VegFru: floor(14.6) = 14 -> 15, floor(43.8) = 43 -> 45, 73 -> 75.
    assert [num_unseen_classes(292, r, 3) for r in (0.05, 0.15, 0.25)] == [
        15, 45, 75]
    # The digits' zs configs: 20 % of 10.
    assert class_split(10, 0.2).unseen_labels == (8, 9)
    # 0 holds out nothing.
    assert class_split(200, 0).order == tuple(range(200))


@pytest.mark.parametrize('ratio, groups, message', [
    (0.004, None, 'holds out no class'),
    # Groups must each keep a seen class: 3 unseen, 2 from a group of 2.
    (0.5, ((2, 2), (4, 1)), 'leaves no seen class'),
])
def test_a_ratio_that_empties_a_side_is_refused(ratio, groups, message):
    with pytest.raises(ClassSplitError, match=message) as info:
        class_split(200 if groups is None else 6, ratio, groups)
    assert info.value.key == 'unseen_ratio'
    # Below 1, floor(ratio x C) <= C - 1: one group always keeps a class.
    assert class_split(200, 0.999).num_seen == 1


def load(cls, root, split, **kwargs):
    # The images are solid JPEGs written by the trees; the split is about
    # the lists.
    return cls(data_root=str(root), split=split, warn_size=False,
               check_images=False, **kwargs)


# (tree, dataset type, ratio, original labels held out, class names held
# out): each tree's last label-order class(es).
TREES = [
    (make_cub, CUB200, 0.34, (2, ), ('003.Sooty_Albatross', )),
    # NABirds: sparse ids in increasing order, 1000 is the last.
    (make_nabirds, NABirds, 0.34, (2, ), ('Red-tailed Hawk (Adult)', )),
    # Aircraft and Food-101: the file order, not the sorted one.
    (make_aircraft, FGVCAircraftHash, 0.25, (3, ), ('Cessna 172', )),
    (make_food, Food101Hash, 0.34, (2, ), ('Baby back ribs', )),
    # VegFru's 292 classes give DSH's own count: 14 last classes by the
    # plain rule, 10 vegetables + 5 fruits with DSH's groups.
    (make_vegfru, PlainVegFru, 0.05, tuple(range(278, 292)), None),
    (make_vegfru, DSHVegFru, 0.05,
     tuple(range(190, 200)) + tuple(range(287, 292)), None),
]


@pytest.mark.parametrize('make, cls, ratio, held_out, names', TREES,
                         ids=lambda v: getattr(v, '__name__', None))
def test_which_classes_each_dataset_holds_out(tmp_path, make, cls, ratio,
                                              held_out, names):
    root = make(tmp_path)
    full = {split: load(cls, root, split) for split in ('train', 'test')}
    every = {split: load(cls, root, split, unseen_ratio=ratio, subset='all')
             for split in ('train', 'test')}
    split = every['train'].class_split
    assert split.unseen_labels == held_out
    num_seen = split.num_seen
    classes = full['train'].metainfo['classes']
    if names is not None:
        assert tuple(classes[i] for i in held_out) == names
    for name in ('train', 'test'):
        new_label = split.new_label
        before = [new_label[int(label)]
                  for label in full[name].get_gt_labels()]
        # Same images in the same order; renumbered labels (only VegFru's
        # groups renumber), class names following them.
        assert list(every[name].get_gt_labels()) == before
        assert every[name].metainfo['classes'] == tuple(
            classes[i] for i in split.order)
        for subset, keep in (('seen', lambda y: y < num_seen),
                             ('unseen', lambda y: y >= num_seen)):
            wanted = [label for label in before if keep(label)]
            if not wanted:
                # A tiny tree without images of that side: refused.
                with pytest.raises(ClassSplitError, match='has no image') as \
                        info:
                    load(cls, root, name, unseen_ratio=ratio, subset=subset)
                assert info.value.key == 'unseen_ratio'
                continue
            part = load(cls, root, name, unseen_ratio=ratio, subset=subset)
            assert list(part.get_gt_labels()) == wanted


def test_dsh_vegfru_renumbers_like_dsh(tmp_path):
    root = make_vegfru(tmp_path)
    # Train labels 0, 0, 200, 291: the first fruit follows the 190 known
    # vegetables; the last fruit is unseen and stays last.
    train = load(DSHVegFru, root, 'train', unseen_ratio=0.05, subset='all')
    assert list(train.get_gt_labels()) == [0, 0, 190, 291]
    seen = load(DSHVegFru, root, 'train', unseen_ratio=0.05)
    assert list(seen.get_gt_labels()) == [0, 0, 190]
    assert seen.metainfo['classes'][190] == '200'
    # The test split's unseen side: the last fruit.
    unseen = load(DSHVegFru, root, 'test', unseen_ratio=0.05, subset='unseen')
    assert list(unseen.get_gt_labels()) == [291]
    assert unseen.metainfo['classes'][291] == '291'


def make_five_classes(root):
    """CUB layout, 5 classes: class c (1-based) has c train images and
    1 + c % 2 test images (train 15, test 8)."""
    names = [f'{c:03d}.class_{c}' for c in range(1, 6)]
    images = []
    for c in range(1, 6):
        for is_train, count in ((1, c), (0, 1 + c % 2)):
            for _ in range(count):
                k = len(images) + 1
                images.append((str(k), f'{names[c - 1]}/img_{k:04d}.jpg', c,
                               is_train))
    return _id_tables(root, list(enumerate(names, start=1)), images)


def test_sizes_of_the_seen_and_unseen_sets(tmp_path):
    root = make_five_classes(tmp_path)
    # 0.4 x 5 = 2 unseen classes: 4 and 5 (labels 3, 4).
    sets = {(split, subset): load(CUB200, root, split, unseen_ratio=0.4,
                                  subset=subset)
            for split in ('train', 'test') for subset in ('seen', 'unseen')}
    sizes = {key: len(dataset) for key, dataset in sets.items()}
    # Seen: train 1 + 2 + 3, test 2 + 1 + 2; unseen: train 4 + 5, test
    # 1 + 2.
    assert sizes == {('train', 'seen'): 6, ('test', 'seen'): 5,
                     ('train', 'unseen'): 9, ('test', 'unseen'): 3}
    # The four protocols' (queries, database): the seen database is the
    # training set, "all" appends the unseen training images.
    database = sizes['train', 'seen']
    everything = database + sizes['train', 'unseen']
    assert everything == len(load(CUB200, root, 'train'))
    protocols = {
        'seen@seen': (sizes['test', 'seen'], database),
        'seen@all': (sizes['test', 'seen'], everything),
        'unseen@unseen': (sizes['test', 'unseen'], sizes['train', 'unseen']),
        'unseen@all': (sizes['test', 'unseen'], everything),
    }
    assert protocols == {'seen@seen': (5, 6), 'seen@all': (5, 15),
                         'unseen@unseen': (3, 9), 'unseen@all': (3, 15)}
    # No unseen class in training: labels 0..2 only.
    assert set(sets['train', 'seen'].get_gt_labels()) == {0, 1, 2}
    assert set(sets['train', 'unseen'].get_gt_labels()) == {3, 4}
    assert set(sets['test', 'unseen'].get_gt_labels()) == {3, 4}


def test_ratio_zero_is_todays_dataset(tmp_path):
    root = make_five_classes(tmp_path)
    today = load(CUB200, root, 'train')
    for kwargs in (dict(unseen_ratio=0), dict(unseen_ratio=0.0, subset='all')):
        same = load(CUB200, root, 'train', **kwargs)
        assert same.data_list == today.data_list
        assert same.metainfo == today.metainfo
        assert same.class_split is None


@pytest.mark.parametrize('kwargs, key, message', [
    (dict(unseen_ratio=1.0), 'unseen_ratio', r'in \[0, 1\)'),
    (dict(unseen_ratio=-0.1), 'unseen_ratio', r'in \[0, 1\)'),
    (dict(unseen_ratio='5%'), 'unseen_ratio', r'in \[0, 1\)'),
    (dict(unseen_ratio=0.1), 'unseen_ratio', 'holds out no class'),
    (dict(subset='unseen'), 'subset', 'needs unseen_ratio > 0'),
    (dict(unseen_ratio=0.4, subset='novel'), 'subset', "got subset='novel'"),
])
def test_bad_options_are_one_line_naming_the_key(tmp_path, kwargs, key,
                                                 message):
    root = make_five_classes(tmp_path)
    with pytest.raises(DatasetError, match=message) as info:
        load(CUB200, root, 'train', **kwargs)
    assert info.value.key == key
    assert str(info.value).startswith(f'{key}: ')
    assert '\n' not in str(info.value)


def test_train_refuses_an_empty_split_before_any_work(digits_root, tmp_path):
    """0.05 of the 10 digits holds out floor(0.5) = 0 classes."""
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [sys.executable, 'tools/train.py',
         'configs/queryopt/queryopt_digits_zs_12bit.py', '--work-dir',
         str(work_dir), '--cfg-options',
         f'train_dataloader.dataset.data_root={digits_root}',
         f'val_dataloader.dataset.data_root={digits_root}',
         f'test_dataloader.dataset.data_root={digits_root}',
         'train_dataloader.dataset.unseen_ratio=0.05',
         'val_dataloader.dataset.unseen_ratio=0.05',
         'test_dataloader.dataset.unseen_ratio=0.05'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    (line, ) = [x for x in result.stderr.splitlines() if 'unseen_ratio' in x]
    assert 'train_dataloader.dataset' in line
    assert 'unseen_ratio=0.05 holds out no class' in line
    assert not osp.exists(work_dir / 'last_checkpoint')
