"""NABirds in the hashing protocol."""
from mmqueryopt.registry import DATASETS
from .id_tables import IdTableDataset


@DATASETS.register_module()
class NABirds(IdTableDataset):
    """NABirds: 555 visual categories of North American birds.

    ``classes.txt`` lists the whole taxonomy (more ids than are used); the
    labels are the sparse class ids that ``image_class_labels.txt`` uses,
    mapped to 0..554 in increasing id order. The mapping is computed over both
    splits so that database and queries share it. See
    :class:`IdTableDataset` for the layout and the checks.

    Args:
        data_root (str): The ``nabirds`` folder.
        split (str): ``'train'`` (23,929 images, the database) or ``'test'``
            (24,633, the queries). Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    OFFICIAL_SIZES = {'train': 23929, 'test': 24633}
    SOURCE = 'NABirds from https://dl.allaboutbirds.org/nabirds'
    USED_CLASSES_ONLY = True
