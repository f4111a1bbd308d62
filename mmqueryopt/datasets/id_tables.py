"""The id-table layout shared by CUB-200-2011 and NABirds.

Both describe each image by an id that appears once in each of three tables
(``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``), with
class names in ``classes.txt``; they differ only in which class ids count as
labels.
"""
from typing import Dict, List, Sequence, Tuple

from .base import HashingDataset
from .list_file import ListFileError, ListLine, read_table


class IdTableDataset(HashingDataset):
    """Base of the datasets in the CUB/NABirds id-table layout.

    Layout under ``data_root``::

        images/<image path>
        images.txt              <image id> <image path>
        image_class_labels.txt  <image id> <class id>
        train_test_split.txt    <image id> <1 = train, 0 = test>
        classes.txt             <class id> <class name>

    Checks at load time: every table is well formed and has no duplicate id,
    the three image tables list the same ids, split flags are 0 or 1 and every
    class id is in ``classes.txt``. Then every image is
    checked (see :class:`HashingDataset`).

    Args:
        data_root (str): The dataset's root folder.
        split (str): ``'train'`` (the database) or ``'test'`` (the queries).
            Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    ANN_FILES = {'train': 'images.txt', 'test': 'images.txt'}
    DATA_PREFIX = 'images'
    #: True: labels are the class ids used by images (sparse ids, NABirds).
    #: False: labels are all ids of classes.txt (CUB's 1..200).
    USED_CLASSES_ONLY = False

    def load_samples(self) -> Tuple[Sequence[str], List[dict]]:
        """Read the split and the names of the label classes."""
        images = read_table(self.ann_file, ('image id', 'image path'), rest=1)
        labels_path = self.root_path('image_class_labels.txt')
        class_of = read_table(labels_path, ('image id', 'class id'))
        split_path = self.root_path('train_test_split.txt')
        is_train = read_table(split_path, ('image id', 'is training image'))
        _check_same_ids(images, class_of, labels_path)
        _check_same_ids(images, is_train, split_path)
        names = self._class_names()
        class_ids = {
            key: self._class_id(line, names)
            for key, line in class_of.items()
        }
        label_ids = sorted(
            set(class_ids.values()) if self.USED_CLASSES_ONLY else names)
        labels = {class_id: label for label, class_id in enumerate(label_ids)}
        wanted = '1' if self.split == 'train' else '0'
        samples = []
        for key, line in images.items():
            flag_line = is_train[key]
            if flag_line.fields[1] not in ('0', '1'):
                raise flag_line.error('expected split flag 1 (train) or 0 '
                                      f'(test), got {flag_line.fields[1]!r}')
            if flag_line.fields[1] == wanted:
                label = labels[class_ids[key]]
                samples.append(self.make_info(line.fields[1], label, line))
        return [names[class_id] for class_id in label_ids], samples

    def _class_names(self) -> Dict[int, str]:
        path = self.root_path('classes.txt')
        table = read_table(path, ('class id', 'class name'), rest=1)
        if not table:
            raise ListFileError(f'{path}: no class name listed')
        return {
            line.as_int(0, 'class id'): line.fields[1]
            for line in table.values()
        }

    def _class_id(self, line: ListLine, names: Dict[int, str]) -> int:
        class_id = line.as_int(1, 'class id')
        if class_id not in names:
            raise line.error(
                f'class id {class_id} is not listed in '
                f"{self.root_path('classes.txt')} (ids {min(names)}.."
                f'{max(names)}, {len(names)} classes)')
        return class_id


def _check_same_ids(images: Dict[str, ListLine], other: Dict[str, ListLine],
                    other_path: str) -> None:
    """Fail on the first image id that only one of two tables lists."""
    for key, line in images.items():
        if key not in other:
            raise line.error(f'image id {key!r} has no line in {other_path}')
    for key, line in other.items():
        if key not in images:
            raise line.error(f'image id {key!r} is not listed in images.txt')
