"""The contract shared by the retrieval datasets: two splits, official sizes.

In the hashing protocol the training split is the retrieval database and the
test split holds the queries. Every dataset here names them ``'train'`` and
``'test'`` so that configs look the same whatever the dataset.
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import get_file_backend
from mmpretrain.datasets import BaseDataset

from mmqueryopt.registry import TRANSFORMS
from .list_file import ListLine


class SplitSizeWarning(UserWarning):
    """A split holds another number of images than the official one."""


class HashingDataset(BaseDataset):
    """Base of the fine-grained retrieval datasets.

    Subclasses set the class attributes below and implement
    :meth:`load_samples`. Class names are read from the dataset's own files,
    so ``metainfo['classes']`` is set once the annotations are loaded (after
    ``full_init`` when ``lazy_init=True``).

    Every data info holds ``img_path``, ``gt_label`` and ``list_line``
    (``'<list file>:<line>'``, the line that listed the image) so that a
    missing or broken image found while loading names its source.

    Args:
        data_root (str): The dataset's root folder.
        split (str): ``'train'`` (the retrieval database) or ``'test'`` (the
            queries). Defaults to ``'train'``.
        warn_size (bool): Warn when the split's size differs from the
            official one. False for a tree that only borrows the layout
            (e.g. the digits export). Defaults to True.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``test_mode``, ``indices``, ...).
    """
    SPLITS = ('train', 'test')
    #: The list file per split, relative to ``data_root``.
    ANN_FILES: Dict[str, str] = {}
    #: The image folder, relative to ``data_root``.
    DATA_PREFIX = ''
    #: Number of images per split in the official release.
    OFFICIAL_SIZES: Dict[str, int] = {}

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 warn_size: bool = True,
                 **kwargs):
        if split not in self.SPLITS:
            raise ValueError(
                f"{type(self).__name__}: split must be 'train' (the "
                f"database) or 'test' (the queries), got {split!r}")
        self.split = split
        self.warn_size = warn_size
        # One backend for all joins: inferring it per path costs ~1 s on
        # VegFru's 117k test images.
        self.backend = get_file_backend(data_root, enable_singleton=True)
        # MMPretrain would build the pipeline in its own registry, where our
        # transforms are unknown unless the default scope is ours.
        pipeline = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in kwargs.pop('pipeline', ())
        ]
        super().__init__(
            ann_file=self.ANN_FILES[split],
            data_root=data_root,
            data_prefix=self.DATA_PREFIX,
            pipeline=pipeline,
            **kwargs)

    @property
    def official_size(self) -> Optional[int]:
        """int | None: The official number of images in this split."""
        return self.OFFICIAL_SIZES.get(self.split)

    def root_path(self, *parts: str) -> str:
        """Join ``data_root`` with a relative path.

        Args:
            *parts (str): Path components below ``data_root``.

        Returns:
            str: The joined path.
        """
        return self.backend.join_path(self.data_root, *parts)

    def make_info(self, img_name: str, label: int, line: ListLine) -> dict:
        """Build one data info.

        Args:
            img_name (str): Image path relative to the image folder.
            label (int): 0-based class index.
            line (ListLine): The list line that named the image.

        Returns:
            dict: The data info.
        """
        return dict(
            img_path=self.backend.join_path(self.img_prefix, img_name),
            gt_label=label,
            list_line=line.where)

    def load_samples(self) -> Tuple[Sequence[str], List[dict]]:
        """Read the split's samples and the class names.

        Returns:
            tuple[Sequence[str], list[dict]]: Class names in label order and
            the data infos built with :meth:`make_info`.
        """
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Load the split, set the classes and compare with the official size.

        Returns:
            list[dict]: The data infos.
        """
        classes, data_list = self.load_samples()
        self._metainfo['classes'] = tuple(classes)
        self._warn_size(len(data_list))
        return data_list

    def _warn_size(self, size: int) -> None:
        # A warning, not an error: subsets are legitimate (smoke runs,
        # ablations), but their mAP is not comparable with the paper's.
        official = self.official_size
        if not self.warn_size or official is None or size == official:
            return
        gap = (f'{official - size} fewer' if size < official
               else f'{size - official} more')
        warnings.warn(
            f"{type(self).__name__} split '{self.split}' lists {size} images "
            f'in {self.ann_file}, the official count is {official} ({gap}); '
            'results on it are not comparable with published ones',
            SplitSizeWarning)

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Root of dataset: \t{self.data_root}',
            f'Split: \t{self.split}',
        ]
