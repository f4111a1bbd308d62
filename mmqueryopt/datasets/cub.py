"""CUB-200-2011 in the hashing protocol."""
from mmqueryopt.registry import DATASETS
from .id_tables import IdTableDataset


@DATASETS.register_module()
class CUB200(IdTableDataset):
    """CUB-200-2011: 200 bird species, labels = ``classes.txt`` ids 1..200.

    Unlike MMPretrain's ``CUB``, class names come from ``classes.txt`` (e.g.
    ``'001.Black_footed_Albatross'``) and malformed tables fail loudly (a split
    flag other than 0/1 or a class id outside ``classes.txt`` is an error, not
    a silently misplaced image or label -1). See :class:`IdTableDataset` for
    the layout and the checks.

    Args:
        data_root (str): The ``CUB_200_2011`` folder.
        split (str): ``'train'`` (5,994 images, the database) or ``'test'``
            (5,794, the queries). Defaults to ``'train'``.
        **kwargs: Other arguments of :class:`HashingDataset`.
    """
    OFFICIAL_SIZES = {'train': 5994, 'test': 5794}
    SOURCE = ('CUB-200-2011 from '
              'https://www.vision.caltech.edu/datasets/cub_200_2011/')
