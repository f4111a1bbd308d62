"""FGVC-Aircraft 2013b in the hashing protocol."""
from typing import List, Sequence, Tuple

from mmqueryopt.registry import DATASETS
from .base import HashingDataset
from .list_file import read_names, read_table


@DATASETS.register_module()
class FGVCAircraftHash(HashingDataset):
    """FGVC-Aircraft 2013b at the variant level (100 classes).

    Layout under ``data_root`` (the ``fgvc-aircraft-2013b`` folder)::

        data/images/<image id>.jpg
        data/variants.txt                 one variant name a line
        data/images_variant_trainval.txt  <image id> <variant name>
        data/images_variant_test.txt      <image id> <variant name>

    The order of ``variants.txt`` defines the labels. A line is split at its
    first space only, since names hold spaces and slashes (``Boeing 737-200``,
    ``F/A-18``); image ids are kept as text, leading zeros included.

    Unlike MMPretrain's ``FGVCAircraft``, ``split='train'`` is the 6,667-image
    trainval list (the retrieval database), not the 3,334-image train list.
    Checks at load time: well-formed lines, unique image ids, every variant in
    ``variants.txt``. Then every image is
    checked (see :class:`HashingDataset`).

    Args:
        data_root (str): The ``fgvc-aircraft-2013b`` folder.
        split (str): ``'train'`` (trainval, 6,667 images, the database) or
            ``'test'`` (3,333, the queries). Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    ANN_FILES = {
        'train': 'data/images_variant_trainval.txt',
        'test': 'data/images_variant_test.txt',
    }
    DATA_PREFIX = 'data/images'
    OFFICIAL_SIZES = {'train': 6667, 'test': 3333}
    SOURCE = ('FGVC-Aircraft 2013b from '
              'https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/')

    def load_samples(self) -> Tuple[Sequence[str], List[dict]]:
        """Read the split and the variant names of ``variants.txt``."""
        names_path = self.root_path('data', 'variants.txt')
        labels = {
            name: label
            for label, name in enumerate(read_names(names_path, 'variant'))
        }
        samples = []
        lines = read_table(self.ann_file, ('image id', 'variant'), rest=1)
        for image_id, line in lines.items():
            variant = line.fields[1]
            if variant not in labels:
                raise line.error(
                    f'unknown variant {variant!r}, not in {names_path}')
            samples.append(
                self.make_info(f'{image_id}.jpg', labels[variant], line))
        return list(labels), samples
