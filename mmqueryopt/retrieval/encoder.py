"""Encode images into binary codes with a trained model (CONFIG + CHECKPOINT).

What ``tools/encode.py`` and ``tools/search.py`` share (their command line is
:func:`mmqueryopt.engine.cli.add_encoder_args`): building the model in
eval mode from a config and a checkpoint read by the safe loader, the meta
that identifies it in a codes file, the images of a folder, and the loop that
turns a dataloader into codes (or any per-image output, such as the pooled
features of ``tools/analysis_tools/shallow_hash.py``), paths and labels.
"""
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mmqueryopt.evaluation.functional.codes import pack_codes, sign
from mmqueryopt.fileio import (Codes, file_sha256, load_checkpoint_file,
                               strip_ddp_prefix)

# What --images picks up (compared in lower case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def list_images(folder: str,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """The image files under ``folder``, recursively, in sorted order.

    Args:
        folder (str): The folder.
        extensions (Sequence[str]): Lower-case suffixes to keep.

    Returns:
        list[str]: Absolute paths, sorted so that two runs on one folder give
        the same gallery order (and the same tie order in search).

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        ValueError: It holds no image file; the message names it.
    """
    if not osp.isdir(folder):
        raise NotADirectoryError(f'--images {folder!r} is not a folder')
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(
            osp.abspath(osp.join(root, name)) for name in files
            if osp.splitext(name)[1].lower() in extensions)
    if not found:
        raise ValueError(
            f'no image files ({", ".join(extensions)}) under {folder!r}')
    return sorted(found)


class ImageListDataset:
    """A list of image files read with a config's test pipeline.

    Args:
        paths (Sequence[str]): The images.
        pipeline (list[dict]): Transform configs, e.g. the config's
            ``test_dataloader.dataset.pipeline``; built with the current
            default scope's registry.
    """

    def __init__(self, paths: Sequence[str], pipeline: Sequence[dict]):
        from mmengine.dataset import Compose
        self.paths = list(paths)
        self.pipeline = Compose(list(pipeline))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return self.pipeline(dict(img_path=self.paths[index],
                                  sample_idx=index))


def build_encoder(cfg, checkpoint: str, device: str = 'cpu'):
    """The config's model with the checkpoint's weights, in eval mode.

    The checkpoint is read by
    :func:`mmqueryopt.fileio.load_checkpoint_file` (tensors
    and plain data only) and loaded strictly: a checkpoint of another
    configuration is an error here rather than a model that silently keeps
    random weights.

    Args:
        cfg (mmengine.Config): The config (its ``model``, ``default_scope``).
        checkpoint (str): The checkpoint file.
        device (str): Where the model runs. Defaults to ``'cpu'``.

    Returns:
        torch.nn.Module: The model.

    Raises:
        FileNotFoundError / CheckpointFileError: The checkpoint is missing
            or unreadable.
        ValueError: Its weights do not fit the config's model.
    """
    from mmengine.registry import init_default_scope

    from mmqueryopt.registry import MODELS

    init_default_scope(cfg.get('default_scope', 'mmqueryopt'))
    # Read the file before building: a bad checkpoint fails in a second.
    state = load_checkpoint_file(checkpoint, map_location='cpu')
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ValueError(f'checkpoint {checkpoint!r} holds no state dict')
    state = {strip_ddp_prefix(key): value for key, value in state.items()}
    model = MODELS.build(cfg.model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f'checkpoint {checkpoint!r} does not fit the '
                         f"config's model: {error}") from None
    return model.to(device).eval()


def model_meta(model, checkpoint: str, config: Optional[str] = None) -> dict:
    """The meta of codes encoded by ``model`` (see :func:`check_same_model`).

    Args:
        model: The encoder (a ``HashRetriever``).
        checkpoint (str): Its checkpoint file, hashed for ``weights_sha256``.
        config (str, optional): The config file, recorded by name.

    Returns:
        dict: ``method`` (model and head type names), ``nbits``,
        ``weights_sha256`` and, when given, ``config``.
    """
    meta = dict(
        method=f'{type(model).__name__}/{type(model.head).__name__}',
        nbits=int(model.code_length),
        weights_sha256=file_sha256(checkpoint))
    if config is not None:
        meta['config'] = osp.splitext(osp.basename(config))[0]
    return meta


def encode(
    model,
    dataloader,
    progress: bool = True,
    relaxed: bool = False,
) -> Tuple[np.ndarray, List[str], Optional[np.ndarray]]:
    """Encode every image of a dataloader.

    Args:
        model: The encoder, in eval mode.
        dataloader: Yields MMEngine batches (``inputs``, ``data_samples``
            with ``img_path`` and, for labelled data, ``gt_label``).
        progress (bool): Show MMEngine's progress bar. Defaults to True.
        relaxed (bool): Return the relaxed bits (branch 0, in (-1, 1))
            instead of the binary codes. Defaults to False.

    Returns:
        tuple: ``(codes, paths, labels)``: ``(N, k)`` codes in {-1, +1}
        (int8; sign with ties to +1, as ``predict``) or, with ``relaxed``,
        float32 values, the image paths, and ``(N,)`` class ids when every
        sample has a single ``gt_label``, else None.
    """
    values, paths, labels = encode_outputs(model, dataloader, relaxed_bits,
                                           progress)
    return (values if relaxed else sign(values).astype(np.int8), paths,
            labels)


def relaxed_bits(model, inputs):
    """The relaxed bits (branch 0) of preprocessed images.

    Args:
        model: The encoder, in eval mode.
        inputs (Tensor): (b, 3, H, W), as its data preprocessor returns them.

    Returns:
        Tensor: (b, code_length).
    """
    return model.extract_feat(inputs)[:, :model.code_length]


def encode_outputs(
    model,
    dataloader,
    compute: Callable,
    progress: bool = True,
) -> Tuple[np.ndarray, List[str], Optional[np.ndarray]]:
    """Any per-image output of a model over every image of a dataloader:
    the loop of :func:`encode` (:func:`relaxed_bits`), also serving other
    outputs such as pooled features.

    Args:
        model: The model, in eval mode; its ``data_preprocessor`` prepares
            the images.
        dataloader: Yields MMEngine batches (``inputs``, ``data_samples``
            with ``img_path`` and, for labelled data, ``gt_label``).
        compute (Callable): ``compute(model, inputs)``: (b, 3, H, W)
            preprocessed images to a (b, D) tensor, one row per image that
            does not depend on its batch mates.
        progress (bool): Show MMEngine's progress bar. Defaults to True.

    Returns:
        tuple: ``(values, paths, labels)``: ``(N, D)`` float32 in dataset
        order, the image paths, and ``(N,)`` class ids when every sample has
        a single ``gt_label``, else None.
    """
    import torch
    from mmengine.utils import ProgressBar

    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    values, paths, labels = [], [], []
    with torch.no_grad():
        for batch in dataloader:
            rows = _by_shape(model, batch, compute)
            values.append(rows.numpy())
            for sample in batch['data_samples']:
                paths.append(osp.abspath(sample.img_path))
                label = sample.get('gt_label')
                # Only single-label class ids: what the grid's right/wrong
                # borders and a class-id labels array can use.
                labels.append(int(label[0]) if label is not None
                              and label.numel() == 1 else None)
            if bar is not None:
                # Per batch: the bar prints a line per update when its
                # output is not a terminal (logs, CI).
                bar.update(len(rows))
    if bar is not None:
        print()  # ProgressBar leaves the cursor on its line
    known = bool(labels) and all(label is not None for label in labels)
    return (np.concatenate(values), paths,
            np.asarray(labels, dtype=np.int64) if known else None)


def _by_shape(model, batch: dict, compute: Callable):
    """``compute``'s rows of a batch, (b, D) float32 on the CPU, computed on
    each group of same-sized images
    (:func:`mmqueryopt.models.prototype.rows_by_shape`)."""
    from mmqueryopt.models.prototype import rows_by_shape
    return rows_by_shape(
        model, batch['inputs'],
        lambda model, images: compute(model, images).float().cpu())


def to_codes(codes: np.ndarray, paths: Sequence[str],
             labels: Optional[np.ndarray], meta: dict) -> Codes:
    """Pack ±1 codes into a :class:`Codes` for :func:`save_codes`."""
    packed, nbits = pack_codes(codes, 'codes')
    return Codes(packed, nbits, np.asarray(paths, dtype=str), labels,
                 dict(meta))
