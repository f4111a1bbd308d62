"""The gallery (MMPretrain's "prototype") of a :class:`HashRetriever`.

What :class:`~mmqueryopt.models.HashRetriever` needs to be the model of
MMPretrain's ``ImageRetrievalInferencer``:

* :func:`encode_prototype`: the ±1 codes of a gallery dataloader, placed by
  ``sample_idx``. Under several processes each rank's ``(index, code)``
  pairs are gathered and written, not summed: MMPretrain's
  ``ImageToImageRetriever`` sums the ranks' rows, which counts a sample
  that ``DefaultSampler(round_up=True)`` pads onto two ranks twice (a ±2
  code, a wrong Hamming distance).
* :func:`check_prototype_images`: the gallery's images, checked before any
  encoding, so that a missing or undecodable one is one line naming it.
* :func:`hamming_scores`: ``pred_score`` over the whole gallery, ranked by
  (Hamming distance, gallery index).
* :func:`load_from_local_noting_file`: MMEngine's local checkpoint loader,
  reading safely and noting the file in the state dict's metadata, so that
  the model knows which checkpoint its weights came from (a codes file
  records that checkpoint's sha256).
"""
import os.path as osp
from collections import OrderedDict
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmqueryopt.evaluation.functional.codes import sign
from mmqueryopt.fileio import load_from_local

#: The key under which :func:`load_from_local_noting_file` notes the file
#: in the metadata of a checkpoint's root module.
CHECKPOINT_FILE_KEY = 'mmqueryopt_checkpoint_file'


def load_from_local_noting_file(filename: str, map_location: Any) -> Any:
    """:func:`mmqueryopt.fileio.load_from_local`, noting ``filename`` in the
    metadata of the state dict's root module.

    MMEngine's ``load_checkpoint`` (what ``mmpretrain.get_model`` and the
    inferencers call) keeps a state dict's ``_metadata`` and hands the root
    module's entry to ``_load_from_state_dict``: there
    :class:`~mmqueryopt.models.HashRetriever` reads the file its weights
    came from. For :func:`mmqueryopt.compat.route_local_checkpoint_loading`.

    Args:
        filename (str): The checkpoint file.
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded checkpoint, its state dict an ``OrderedDict`` whose
        ``_metadata['']`` holds :data:`CHECKPOINT_FILE_KEY`.
    """
    checkpoint = load_from_local(filename, map_location)
    if not isinstance(checkpoint, dict):
        return checkpoint
    key = 'state_dict' if 'state_dict' in checkpoint else None
    state = checkpoint[key] if key else checkpoint
    if not isinstance(state, dict):
        return checkpoint
    metadata = getattr(state, '_metadata', None)
    if not isinstance(state, OrderedDict):
        state = OrderedDict(state)
    metadata = OrderedDict(metadata or {})
    metadata[''] = dict(metadata.get('', {}),
                        **{CHECKPOINT_FILE_KEY: osp.abspath(filename)})
    state._metadata = metadata
    if key is None:
        return state
    checkpoint[key] = state
    return checkpoint


def hamming_scores(query_codes: Tensor, gallery_codes: Tensor) -> Tensor:
    """Scores of each gallery item, decreasing in (Hamming distance, index).

    ``score = (K - d) - i / N`` for the item ``i`` of ``N`` at Hamming
    distance ``d`` from a query of ``K`` bits: an item nearer than another
    scores higher, and of two at one distance the earlier one does. The
    index term stays below 1, so no score crosses into another distance's
    level: ``d = K - ceil(score)``. Strict scores make any top-k (e.g.
    ``torch.topk``, whose order of equal values on the CPU is not the
    index order) rank ties by gallery index, as
    :class:`~mmqueryopt.retrieval.BinaryIndex` and the metric do.

    Args:
        query_codes (Tensor): (B, K) in {-1, +1}.
        gallery_codes (Tensor): (N, K) in {-1, +1}.

    Returns:
        Tensor: (B, N) float64 scores (exact: float64 holds ``K * N`` well
        beyond any gallery).
    """
    num_bits = query_codes.size(1)
    # Products of ±1 codes are integers, exact in float32 up to 2**24 bits.
    products = query_codes.float() @ gallery_codes.float().t()
    distances = (num_bits - products.double()) / 2
    num = gallery_codes.size(0)
    order = torch.arange(num, dtype=torch.float64,
                         device=products.device) / num
    return (num_bits - distances) - order


def scores_to_distances(scores: Tensor, code_length: int) -> Tensor:
    """The Hamming distances behind :func:`hamming_scores`' scores.

    Args:
        scores (Tensor): Any shape, as ``hamming_scores`` (or a top-k of
            them) returns.
        code_length (int): K.

    Returns:
        Tensor: int64 distances, ``K - ceil(score)``.
    """
    return (code_length - torch.ceil(scores)).long()


def dataset_image_paths(dataset) -> Optional[List[str]]:
    """The image file of each item of a gallery dataset, when it says.

    Args:
        dataset: An MMEngine ``BaseDataset`` (``get_data_info``, e.g. the
            folder, list and config datasets of ``ImageRetrievalInferencer``)
            or :class:`~mmqueryopt.retrieval.ImageListDataset` (``paths``).

    Returns:
        list[str] | None: One path per item, or None for a dataset that
        does not list its files.
    """
    paths = getattr(dataset, 'paths', None)
    if paths is not None:
        return list(paths)
    if not hasattr(dataset, 'get_data_info'):
        return None
    found = [dataset.get_data_info(i).get('img_path')
             for i in range(len(dataset))]
    return None if None in found else found


def check_prototype_images(dataset) -> None:
    """Refuse a gallery with a missing or undecodable image, before any
    encoding (see :func:`mmqueryopt.datasets.image_check.image_problem`).

    Args:
        dataset: The gallery dataset (see :func:`dataset_image_paths`).

    Raises:
        FileNotFoundError: An image is missing; the message names it.
        BrokenImageError: An image cannot be decoded; the message names it.
    """
    from mmqueryopt.datasets import BrokenImageError
    from mmqueryopt.datasets.image_check import image_problem
    for path in dataset_image_paths(dataset) or ():
        problem = image_problem(path)
        if problem == 'missing':
            raise FileNotFoundError(f'prototype image not found: {path}')
        if problem is not None:
            raise BrokenImageError(f'prototype image {path}: {problem}')


def rows_by_shape(model, inputs, compute: Callable) -> Tensor:
    """``compute``'s rows of a batch's images, each group of same-sized
    images preprocessed on its own, rows in batch order.

    The data preprocessor pads a batch of differently sized images to the
    largest, which would make an image's output depend on its batch mates
    (and on the batch size). A config whose test transforms end in a fixed
    crop gives one group per batch, so this costs nothing there.

    Args:
        model: A :class:`~mmqueryopt.models.HashRetriever`.
        inputs (Tensor | list[Tensor]): The batch's ``inputs``: (3, H, W)
            images, stacked (``default_collate``) or listed
            (``pseudo_collate``).
        compute (Callable): ``compute(model, images)``: (b, 3, H, W)
            preprocessed images to a (b, D) tensor.

    Returns:
        Tensor: (len(inputs), D).
    """
    groups = {}
    for i, image in enumerate(inputs):
        groups.setdefault(tuple(image.shape), []).append(i)
    rows = None
    for members in groups.values():
        data = model.data_preprocessor(
            dict(inputs=[inputs[i] for i in members]), False)
        values = compute(model, data['inputs'])
        if rows is None:
            rows = values.new_empty(len(inputs), values.size(1))
        rows[members] = values
    return rows


def relaxed_rows(model, inputs) -> Tensor:
    """The relaxed bits (branch 0) of a batch's images, as
    :func:`rows_by_shape` computes rows: (b, code_length)."""
    return rows_by_shape(model, inputs, _relaxed)


def _relaxed(model, images: Tensor) -> Tensor:
    return model.extract_feat(images)[:, :model.code_length]


def _batch_meta(samples: Sequence) -> Tuple[List[int], list, list]:
    try:
        indices = [int(s.metainfo['sample_idx']) for s in samples]
    except KeyError:
        raise KeyError(
            "prototype samples lack 'sample_idx' in their metainfo; keep it "
            "in PackInputs' meta_keys: each code is placed at its sample's "
            'gallery index') from None
    paths = [s.metainfo.get('img_path') for s in samples]
    labels = []
    for sample in samples:
        label = sample.get('gt_label')
        labels.append(int(label[0]) if label is not None
                      and label.numel() == 1 else None)
    return indices, paths, labels


@torch.no_grad()
def encode_prototype(model, dataloader) -> Tuple[Tensor, list, list]:
    """The ±1 codes of every image of a gallery dataloader, by sample_idx.

    Each process encodes what its sampler serves; under several processes
    the ``(sample_idx, code)`` pairs of all ranks are gathered and each
    code written at its index. A sample padded onto two ranks is written
    twice with the same code, never added.

    Args:
        model: A :class:`~mmqueryopt.models.HashRetriever`, in eval mode.
        dataloader: Yields MMEngine batches whose data samples carry
            ``sample_idx`` (0 to ``len(dataloader.dataset) - 1``) and, for
            the codes file, ``img_path``.

    Returns:
        tuple: ``(codes, paths, labels)``: (N, code_length) int8 codes in
        {-1, +1} on the CPU, in gallery order, and per item its image path
        and single class id (None where unknown), on every rank.

    Raises:
        ValueError: The gallery is empty, or its loader served only part of
            it.
    """
    from mmengine.dist import all_gather_object, get_world_size
    num = len(dataloader.dataset)
    if num == 0:
        raise ValueError('the prototype holds no images (an empty list, '
                         'folder or dataset)')
    indices, codes, paths, labels = [], [], [], []
    for batch in dataloader:
        samples = batch['data_samples']
        batch_indices, batch_paths, batch_labels = _batch_meta(samples)
        codes.append(sign(relaxed_rows(model, batch['inputs'])).to(
            torch.int8).cpu())
        indices.extend(batch_indices)
        paths.extend(batch_paths)
        labels.extend(batch_labels)
    parts = [(indices, torch.cat(codes) if codes else None, paths, labels)]
    if get_world_size() > 1:
        parts = all_gather_object(parts[0])
    table = torch.zeros(num, model.code_length, dtype=torch.int8)
    seen = torch.zeros(num, dtype=torch.bool)
    item_paths, item_labels = [None] * num, [None] * num
    for part_indices, part_codes, part_paths, part_labels in parts:
        if not part_indices:
            continue
        index = torch.as_tensor(part_indices, dtype=torch.long)
        if index.min() < 0 or index.max() >= num:
            raise ValueError(
                f'prototype sample_idx {int(index.max())} is outside its '
                f'dataset of {num} images')
        table[index] = part_codes
        seen[index] = True
        for i, path, label in zip(part_indices, part_paths, part_labels):
            item_paths[i] = path if path is None else osp.abspath(path)
            item_labels[i] = label
    if not seen.all():
        missing = torch.nonzero(~seen).flatten()[:5].tolist()
        raise ValueError(
            f'the prototype loader served {int(seen.sum())} of the {num} '
            f'images of its dataset (none for sample_idx {missing}); use a '
            f'sampler that serves every image (e.g. DefaultSampler)')
    return table, item_paths, item_labels
