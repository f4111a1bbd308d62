"""Tiny dataset trees in the five official layouts, for the dataset tests.

Each ``make_*`` writes list files in the real line formats and one small JPEG
per listed image, and returns the root to pass as ``data_root``.
"""
from pathlib import Path
from typing import Iterable, List, Tuple

from PIL import Image


def write_image(path: Path, color=(200, 30, 60), size=(8, 6),
                mode: str = 'RGB', fmt: str = 'JPEG') -> Path:
    """Write a solid image, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt)
    return path


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write a list file, one line each, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{line}\n' for line in lines))
    return path


def set_line(path: Path, lineno: int, text: str) -> None:
    """Replace the 1-based line ``lineno`` of a list file."""
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    write_lines(path, lines)


def _id_tables(root: Path, classes: List[Tuple[int, str]],
               images: List[Tuple[str, str, int, int]]) -> Path:
    """The CUB/NABirds layout; images are (id, path, class id, is_train)."""
    write_lines(root / 'classes.txt', [f'{i} {n}' for i, n in classes])
    write_lines(root / 'images.txt', [f'{k} {p}' for k, p, _, _ in images])
    write_lines(root / 'image_class_labels.txt',
                [f'{k} {c}' for k, _, c, _ in images])
    write_lines(root / 'train_test_split.txt',
                [f'{k} {t}' for k, _, _, t in images])
    for _, img_path, _, _ in images:
        write_image(root / 'images' / img_path)
    return root


def make_cub(root: Path) -> Path:
    """CUB: 3 classes; train = ids 1, 3, 5, 6 and test = ids 2, 4, 7."""
    names = ['001.Black_footed_Albatross', '002.Laysan_Albatross',
             '003.Sooty_Albatross']
    images = [(str(k), f'{names[c - 1]}/img_{k:04d}.jpg', c, t)
              for k, c, t in [(1, 1, 1), (2, 1, 0), (3, 2, 1), (4, 2, 0),
                              (5, 3, 1), (6, 3, 1), (7, 3, 0)]]
    return _id_tables(root, list(enumerate(names, start=1)), images)


def make_nabirds(root: Path) -> Path:
    """NABirds: classes.txt holds 5 ids, images use the sparse 817, 295, 1000.

    Labels in sorted id order: 295 -> 0, 817 -> 1, 1000 -> 2.
    Train = images a, c, d; test = b, e.
    """
    classes = [(0, 'Birds'), (22, 'Perching Birds'),
               (295, 'Black-bellied Whistling-Duck'),
               (817, 'Mourning Dove'), (1000, 'Red-tailed Hawk (Adult)')]
    rows = [('a', 817, 1), ('b', 817, 0), ('c', 295, 1), ('d', 1000, 1),
            ('e', 295, 0)]
    images = []
    for letter, class_id, is_train in rows:
        uuid = f'0000139e-21dc-4d0c-bfe1-4cae3c85c82{letter}'
        path = f"{class_id:04d}/{uuid.replace('-', '')}.jpg"
        images.append((uuid, path, class_id, is_train))
    return _id_tables(root, classes, images)


AIRCRAFT_VARIANTS = ['F/A-18', '707-320', 'Boeing 737-200', 'Cessna 172']


def make_aircraft(root: Path) -> Path:
    """FGVC-Aircraft: 4 variants (file order is not sorted order).

    Trainval: 0034309 707-320, 1025794 Boeing 737-200, 0056978 F/A-18,
    0062765 F/A-18 (labels 1, 2, 0, 0). Test: 1200000 Cessna 172,
    0000001 Boeing 737-200 (labels 3, 2).
    """
    data = root / 'data'
    write_lines(data / 'variants.txt', AIRCRAFT_VARIANTS)
    splits = {
        'trainval': ['0034309 707-320', '1025794 Boeing 737-200',
                     '0056978 F/A-18', '0062765 F/A-18'],
        'test': ['1200000 Cessna 172', '0000001 Boeing 737-200'],
    }
    for split, lines in splits.items():
        write_lines(data / f'images_variant_{split}.txt', lines)
        for line in lines:
            write_image(data / 'images' / f'{line.split()[0]}.jpg')
    return root


FOOD_LABELS = ['Beef carpaccio', 'Apple pie', 'Baby back ribs']


def make_food(root: Path) -> Path:
    """Food-101: 3 classes, labels.txt order is not sorted order.

    Train: apple_pie/1005649, apple_pie/1014775, beef_carpaccio/2,
    baby_back_ribs/33 (labels 1, 1, 0, 2). Test: baby_back_ribs/44,
    beef_carpaccio/5 (labels 2, 0).
    """
    write_lines(root / 'meta' / 'labels.txt', FOOD_LABELS)
    splits = {
        'train': ['apple_pie/1005649', 'apple_pie/1014775',
                  'beef_carpaccio/2', 'baby_back_ribs/33'],
        'test': ['baby_back_ribs/44', 'beef_carpaccio/5'],
    }
    for split, lines in splits.items():
        write_lines(root / 'meta' / f'{split}.txt', lines)
        for line in lines:
            write_image(root / 'images' / f'{line}.jpg')
    return root


def make_vegfru(root: Path) -> Path:
    """VegFru: train labels 0, 0, 200, 291; test labels 291, 0, 200.

    The val list names a missing image, which proves it is never read.
    """
    splits = {
        'train': [('veg200_images/Chinese_artichoke/v_01_01_0001.jpg', 0),
                  ('veg200_images/Chinese_artichoke/v_01_01_0002.jpg', 0),
                  ('fru92_images/almond/f_01_01_0001.jpg', 200),
                  ('fru92_images/yali_pear/f_09_05_0001.jpg', 291)],
        'test': [('fru92_images/yali_pear/f_09_05_0002.jpg', 291),
                 ('veg200_images/Chinese_artichoke/v_01_01_0003.jpg', 0),
                 ('fru92_images/almond/f_01_01_0002.jpg', 200)],
    }
    lists = root / 'vegfru_list'
    for split, rows in splits.items():
        write_lines(lists / f'vegfru_{split}.txt',
                    [f'{path} {label}' for path, label in rows])
        for path, _ in rows:
            write_image(root / path)
    write_lines(lists / 'vegfru_val.txt', ['missing/never_read.jpg 5'])
    return root
