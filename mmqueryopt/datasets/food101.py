"""Food-101 in the hashing protocol."""
from typing import List, Sequence, Tuple

from mmqueryopt.registry import DATASETS
from .base import HashingDataset
from .list_file import read_list, read_names


@DATASETS.register_module()
class Food101Hash(HashingDataset):
    """Food-101 (101 dishes).

    Layout under ``data_root`` (the ``food-101`` folder)::

        images/<class folder>/<image id>.jpg
        meta/labels.txt  one display name a line (``Apple pie``)
        meta/train.txt   <class folder>/<image id>
        meta/test.txt    <class folder>/<image id>

    The order of ``labels.txt`` defines the labels, and a name lower-cased
    with spaces turned into underscores is its folder (``apple_pie``).
    ``metainfo['classes']`` holds the display names.

    Checks at load time: well-formed lines, folder names that do not collide
    and every listed folder derived from a name of ``labels.txt``. Then every
    image is checked (see :class:`HashingDataset`).

    Args:
        data_root (str): The ``food-101`` folder.
        split (str): ``'train'`` (75,750 images, the database) or ``'test'``
            (25,250, the queries). Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    ANN_FILES = {'train': 'meta/train.txt', 'test': 'meta/test.txt'}
    DATA_PREFIX = 'images'
    OFFICIAL_SIZES = {'train': 75750, 'test': 25250}
    SOURCE = ('Food-101 from '
              'https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/')

    def load_samples(self) -> Tuple[Sequence[str], List[dict]]:
        """Read the split and the display names of ``labels.txt``."""
        names_path = self.root_path('meta', 'labels.txt')
        names = read_names(names_path, 'class name')
        labels = {}
        for label, (name, line) in enumerate(names.items()):
            folder = name.lower().replace(' ', '_')
            if folder in labels:
                raise line.error(f'class {name!r} has the same folder '
                                 f'{folder!r} as an earlier line')
            labels[folder] = label
        samples = []
        for line in read_list(self.ann_file, ('class', 'image id'), sep='/'):
            folder, image_id = line.fields
            if folder not in labels:
                raise line.error(
                    f'unknown class {folder!r}: no name in {names_path} '
                    'gives this folder (lower case, spaces as underscores)')
            img_name = f'{folder}/{image_id}.jpg'
            samples.append(self.make_info(img_name, labels[folder], line))
        return list(names), samples
