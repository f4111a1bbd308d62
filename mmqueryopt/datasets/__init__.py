"""Datasets of the hashing protocol and a robust image loader.

Registered types (scope ``mmqueryopt``): ``CUB200``, ``FGVCAircraftHash``,
``Food101Hash``, ``NABirds``, ``VegFru`` (each with ``split='train'`` for the
database and ``split='test'`` for the queries) and the transform
``LoadImageBGR``; ``ClassFolders`` for your own photos
(``data_root/{train,test}/<class>/``). MMPretrain's ``CUB``,
``FGVCAircraft`` and ``Food101`` stay reachable under their own names.

Every dataset checks its files and images when it loads its list and raises
a one-line :class:`DatasetError`; :func:`check_data` runs those checks for a
whole config before a run.
"""
from .aircraft import FGVCAircraftHash
from .base import HashingDataset, SplitSizeWarning
from .class_folders import ClassFolders
from .cub import CUB200
from .errors import DataNotFoundError, DatasetError
from .food101 import Food101Hash
from .id_tables import IdTableDataset
from .list_file import (ListFileError, ListLine, read_list, read_names,
                        read_table)
from .loading import BrokenImageError, LoadImageBGR, decode_bgr
from .round_cache import RoundCache, RoundCacheError, round_caches
from .nabirds import NABirds
from .preflight import check_data
from .vegfru import VegFru

__all__ = [
    'ClassFolders', 'HashingDataset', 'IdTableDataset', 'SplitSizeWarning',
    'CUB200',
    'FGVCAircraftHash', 'Food101Hash', 'NABirds', 'VegFru', 'ListFileError',
    'ListLine', 'read_list', 'read_names', 'read_table', 'BrokenImageError',
    'LoadImageBGR', 'decode_bgr', 'RoundCache', 'RoundCacheError',
    'round_caches', 'DatasetError', 'DataNotFoundError', 'check_data'
]
