"""The contract shared by the retrieval datasets: two splits, official sizes.

In the hashing protocol the training split is the retrieval database and the
test split holds the queries. Every dataset here names them ``'train'`` and
``'test'`` so that configs look the same whatever the dataset.
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import LocalBackend, get_file_backend
from mmpretrain.datasets import BaseDataset

from mmqueryopt.registry import TRANSFORMS
from .class_split import (ClassSplit, ClassSplitError, Groups,
                          check_unseen_ratio, class_split)
from .errors import DataNotFoundError
from .image_check import check_listed_images
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
    missing or broken image names its source.

    When it loads its list, the dataset checks that ``data_root`` and every
    list file exist and that every listed image would load (see
    :func:`~mmqueryopt.datasets.image_check.check_listed_images`: header
    and end of each file, in parallel, cached by size and mtime); a problem
    raises a :class:`DatasetError` whose one line names every broken image,
    where the dataset comes from and how to check a tree.

    Args:
        data_root (str): The dataset's root folder.
        split (str): ``'train'`` (the retrieval database) or ``'test'`` (the
            queries). Defaults to ``'train'``.
        warn_size (bool): Warn when the split's size differs from the
            official one. False for a tree that only borrows the layout
            (e.g. the digits export). Defaults to True.
        skip_broken (bool): Leave missing and broken images out of the
            split, logging them as a warning, instead of raising. Defaults
            to False.
        check_images (bool): Check the images when the list is loaded.
            False leaves it to the loader (:class:`LoadImageBGR`), at the
            first batch that holds a broken image; images on a remote
            backend are never checked here. Defaults to True.
        unseen_ratio (float): The fraction of classes held out of training
            (DSH_Analysis's seen/unseen protocol, docs/seen_unseen.md): 0,
            0.05, 0.15 or 0.25 there. The last classes of the label order
            are unseen (see :func:`~mmqueryopt.datasets.class_split.
            class_split`); labels are renumbered so that seen classes are
            ``0..S-1`` and unseen ones ``S..C-1`` (a change only for
            :attr:`UNSEEN_GROUPS` datasets), and ``metainfo['classes']``
            follows. 0 keeps every class and label. Defaults to 0.
        subset (str): Which classes' images the split keeps: ``'seen'``
            (training, the seen queries and database), ``'unseen'`` (the
            unseen queries and database) or ``'all'``. Defaults to
            ``'seen'``, which is every class when ``unseen_ratio`` is 0.
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
    #: The dataset's name and official page.
    SOURCE = ''
    #: ``(size, share)`` label ranges that each give up a share of the
    #: unseen classes from their end; None: the last classes are unseen.
    UNSEEN_GROUPS: Optional[Groups] = None
    SUBSETS = ('seen', 'unseen', 'all')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 warn_size: bool = True,
                 skip_broken: bool = False,
                 check_images: bool = True,
                 unseen_ratio: float = 0.0,
                 subset: str = 'seen',
                 **kwargs):
        if split not in self.SPLITS:
            raise ValueError(
                f"{type(self).__name__}: split must be 'train' (the "
                f"database) or 'test' (the queries), got {split!r}")
        check_unseen_ratio(unseen_ratio)
        if subset not in self.SUBSETS or (subset == 'unseen'
                                          and not unseen_ratio):
            error = ClassSplitError(
                f"subset must be 'seen', 'unseen' or 'all', and 'unseen' "
                f'needs unseen_ratio > 0; got subset={subset!r} with '
                f'unseen_ratio={unseen_ratio!r}')
            error.key = 'subset'
            raise error
        self.split = split
        self.unseen_ratio = unseen_ratio
        self.subset = subset
        #: The seen/unseen split, set when the list is loaded.
        self.class_split: Optional[ClassSplit] = None
        self.warn_size = warn_size
        self.skip_broken = skip_broken
        # One backend for all joins: inferring it per path costs ~1 s on
        # VegFru's 117k test images.
        self.backend = get_file_backend(data_root, enable_singleton=True)
        self.check_images = check_images and isinstance(
            self.backend, LocalBackend)
        if isinstance(self.backend, LocalBackend) and \
                not osp.isdir(data_root):
            error = DataNotFoundError(
                f'{type(self).__name__} data root not found: {data_root} '
                f'(absolute: {osp.abspath(data_root)})', self.source)
            error.key = 'data_root'
            raise error
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
    def source(self) -> str:
        """str: Where to get the dataset, for error messages."""
        if self.warn_size and self.SOURCE:
            return (f'get {self.SOURCE} (docs/datasets.md lists every '
                    "dataset's source)")
        # warn_size=False: a tree that only borrows the layout.
        return ('docs/datasets.md says where to get each dataset and how '
                'to export the digits')

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
        """Load the split, set the classes, compare with the official size,
        keep the classes of :attr:`subset` and check the images.

        Returns:
            list[dict]: The data infos.
        """
        try:
            classes, data_list = self.load_samples()
        except DataNotFoundError as error:
            error.source = error.source or self.source
            raise
        self._metainfo['classes'] = tuple(classes)
        # The full split's size: a class subset is not a short download.
        self._warn_size(len(data_list))
        if self.unseen_ratio:
            data_list = self._split_classes(data_list)
        if self.check_images and data_list:
            if not osp.isdir(self.img_prefix):
                # Said once rather than as every image missing.
                raise DataNotFoundError(
                    f'{type(self).__name__} image folder not found: '
                    f'{self.img_prefix}', self.source)
            data_list = check_listed_images(
                data_list, self.data_root,
                f"{type(self).__name__} split '{self.split}'",
                self.source, self.skip_broken)
        return data_list

    def _split_classes(self, data_list: List[dict]) -> List[dict]:
        """Renumber the labels for the seen/unseen split and keep the
        images of :attr:`subset`'s classes."""
        classes = self._metainfo['classes']
        try:
            split = class_split(len(classes), self.unseen_ratio,
                                self.UNSEEN_GROUPS)
        except ClassSplitError as error:
            error.problem = f'{type(self).__name__}: {error.problem}'
            raise
        self.class_split = split
        if not split.is_identity:
            new_label = split.new_label
            self._metainfo['classes'] = tuple(classes[i] for i in split.order)
            data_list = [dict(info, gt_label=new_label[info['gt_label']])
                         for info in data_list]
        keep = {'seen': lambda label: label < split.num_seen,
                'unseen': lambda label: label >= split.num_seen,
                'all': lambda label: True}[self.subset]
        data_list = [info for info in data_list if keep(info['gt_label'])]
        if not data_list:
            error = ClassSplitError(
                f"{type(self).__name__} split '{self.split}' has no image of "
                f'its {self.subset} classes at unseen_ratio='
                f'{self.unseen_ratio} ({split.num_seen} seen, '
                f'{split.num_unseen} unseen of {len(classes)}); expected a '
                f'ratio whose {self.subset} classes have images in '
                f'{self.ann_file}')
            error.key = 'unseen_ratio'
            raise error
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
        ] + ([f'Classes: \t{self.subset} at unseen_ratio={self.unseen_ratio}']
             if self.unseen_ratio else [])
