"""VegFru in the hashing protocol."""
from typing import List, Sequence, Tuple

from mmqueryopt.registry import DATASETS
from .base import HashingDataset
from .list_file import read_list


@DATASETS.register_module()
class VegFru(HashingDataset):
    """VegFru: 200 vegetable and 92 fruit categories (292 classes).

    Layout under ``data_root`` (the folder holding ``vegfru_list/``)::

        <image path>                   e.g. veg200_images/.../v_01_01_0001.jpg
        vegfru_list/vegfru_train.txt   <image path> <label 0..291>
        vegfru_list/vegfru_test.txt    <image path> <label 0..291>

    ``vegfru_val.txt`` is not used by the protocol. The release has no class
    names file, so ``metainfo['classes']`` holds the labels as text
    (``'0'`` .. ``'291'``).

    Checks at load time: well-formed lines and labels in 0..291. Then every
    image is checked (see :class:`HashingDataset`).

    Args:
        data_root (str): The folder holding ``vegfru_list/``.
        split (str): ``'train'`` (29,200 images, the database) or ``'test'``
            (116,931, the queries). Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    ANN_FILES = {
        'train': 'vegfru_list/vegfru_train.txt',
        'test': 'vegfru_list/vegfru_test.txt',
    }
    OFFICIAL_SIZES = {'train': 29200, 'test': 116931}
    SOURCE = 'VegFru from https://github.com/ustc-vim/vegfru'
    NUM_CLASSES = 292
    # DSH_Analysis's data/vegfruzs.py: two thirds of the unseen classes
    # from the end of the vegetables, one third from the end of the fruits.
    UNSEEN_GROUPS = ((200, 2), (92, 1))

    def load_samples(self) -> Tuple[Sequence[str], List[dict]]:
        """Read the split; class names are the labels as text."""
        samples = []
        # The label is the last field, so a path with spaces stays whole.
        for line in read_list(self.ann_file, ('image path', 'label'), rest=0):
            label = line.as_int(1, 'label')
            if not 0 <= label < self.NUM_CLASSES:
                raise line.error(f'label {label} is outside 0..'
                                 f'{self.NUM_CLASSES - 1}')
            samples.append(self.make_info(line.fields[0], label, line))
        return [str(label) for label in range(self.NUM_CLASSES)], samples
