"""A database/query split of your own photos, one folder per class."""
import os
import os.path as osp
from typing import List, Sequence, Tuple

from mmengine.logging import MMLogger
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.custom import get_samples

from mmqueryopt.registry import DATASETS
from .errors import DataNotFoundError, DatasetError
from .image_check import check_listed_images

SOURCE = ('put the images in data_root/<split>/<class>/ '
          '(docs/datasets.md, "Your own photos")')


@DATASETS.register_module()
class ClassFolders(CustomDataset):
    """``data_root/<split>/<class>/*``: ``'train'`` is the retrieval database,
    ``'test'`` the queries.

    MMPretrain's ``CustomDataset`` numbers the class folders of each split
    on its own, so a class missing from the queries would shift the ids of
    every class after it and silently mislabel them. Here the ids are the
    positions of the class names in the sorted union of all splits' class
    folders: a class is the same id in every split, whichever split lacks
    it (its queries then have no relevant database image, which the metric
    counts).

    As :class:`HashingDataset`, the dataset checks that the folders exist
    and that every image would load when it lists them, raising a
    :class:`DatasetError` (one line naming every broken image) unless
    ``skip_broken``.

    Args:
        data_root (str): The folder holding the split folders.
        split (str): The split folder to read, one of ``splits``.
        splits (Sequence[str]): Every split folder; their class folders make
            the id table. Defaults to ``('train', 'test')``.
        skip_broken (bool): Leave missing and broken images out, logging
            them as a warning, instead of raising. Defaults to False.
        check_images (bool): Check the images when they are listed; False
            leaves it to the loader. Defaults to True.
        **kwargs: As for :class:`mmpretrain.datasets.CustomDataset`
            (``pipeline``, ``extensions``...).
    """

    def __init__(self, data_root: str, split: str,
                 splits: Sequence[str] = ('train', 'test'),
                 skip_broken: bool = False, check_images: bool = True,
                 **kwargs):
        if split not in splits:
            raise ValueError(
                f'ClassFolders split {split!r} is not one of {tuple(splits)}')
        if not osp.isdir(data_root):
            error = DataNotFoundError(
                f'ClassFolders data root not found: {data_root} (absolute: '
                f'{osp.abspath(data_root)})', SOURCE)
            error.key = 'data_root'
            raise error
        folder = osp.join(data_root, split)
        if not osp.isdir(folder):
            raise DataNotFoundError(
                f'no folder {folder!r}: ClassFolders reads '
                f'data_root/{split}/<class>/<images>', SOURCE)
        self.split = split
        self.skip_broken = skip_broken
        self.check_images = check_images
        classes = sorted(set().union(
            *(_class_folders(osp.join(data_root, s)) for s in splits)))
        super().__init__(
            data_root=data_root, data_prefix=split,
            metainfo=dict(classes=tuple(classes)), **kwargs)

    def _find_samples(self) -> List[Tuple[str, int]]:
        """(path relative to the split folder, class id) of every image."""
        present = _class_folders(self.img_prefix)
        folder_to_idx = {
            name: self.CLASSES.index(name) for name in sorted(present)}
        samples, empty = get_samples(
            self.img_prefix, folder_to_idx, is_valid_file=self.is_valid_file)
        if not samples:
            raise DatasetError(
                f'no image in the class folders of {self.img_prefix!r} '
                f'(extensions: {", ".join(sorted(self.extensions))})', SOURCE)
        if empty:
            MMLogger.get_current_instance().warning(
                f'class folders without an image in {self.img_prefix!r}: '
                f'{", ".join(sorted(empty))}')
        return samples

    def load_data_list(self) -> List[dict]:
        """List the split's images and check them.

        Returns:
            list[dict]: The data infos (``img_path``, ``gt_label``).
        """
        data_list = super().load_data_list()
        if self.check_images:
            data_list = check_listed_images(
                data_list, self.data_root, f"ClassFolders split "
                f"'{self.split}'", SOURCE, self.skip_broken)
        return data_list


def _class_folders(folder: str) -> List[str]:
    if not osp.isdir(folder):
        return []
    return [entry.name for entry in os.scandir(folder) if entry.is_dir()]
