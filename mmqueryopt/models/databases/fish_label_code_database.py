"""FISH's database: one fixed binary code per training image, derived from
the training labels alone before training, which the network's codes are
regressed to and which evaluation ranks the queries against.

As aassxun/DSH_Analysis ``utils/fish_tools.py`` computes them (an SDH-style
alternation), with L the (C, m) label matrix, V (k, m) real codes, R (k, k)
a rotation and B (k, m) the binary codes:

    B = sign(R V)                      (+1 where R V >= 0)
    U = sigma L V^T (sigma V V^T)^+
    V = (sigma U^T U + delta R^T R)^+ (sigma U^T L + delta R^T B)
    R = S1 S2, from the SVD S1 E S2 = B V^T

15 times from V ~ N(0, 1), R from the SVD of sign(N(0, 1)) V^T; the codes
are the B of the last pass. Why k is bounded by the labels' rank r: U
(C, k) has rank <= r, so for k > r the matrix ``U^T U`` is singular and in
its k - r null directions V is ``R^T B`` (the delta terms cancel): each
image keeps its own (initially random) code there instead of its label's.
"""
from dataclasses import replace
from typing import Optional, Tuple

import torch
from mmengine.dist import broadcast, is_distributed
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from .base import DatabaseView, HashDatabase

# numpy.linalg.pinv's default cut-off (the reference's), relative to the
# largest singular value.
_PINV_RTOL = 1e-15


def _rotation(codes: Tensor, real: Tensor) -> Tensor:
    """R = S1 S2 of the SVD ``S1 E S2 = codes real^T`` ((k, k))."""
    left, _, right = torch.linalg.svd(codes @ real.T)
    return left @ right


def fish_label_codes(label_matrix: Tensor,
                     real_codes: Tensor,
                     start_codes: Tensor,
                     iterations: int = 15,
                     sigma: float = 1.0,
                     delta: float = 1e-4) -> Tensor:
    """FISH's label-derived codes (the module docstring's alternation).

    Args:
        label_matrix (Tensor): (m, C) one-hot or multi-hot labels.
        real_codes (Tensor): The starting V, (k, m), N(0, 1) draws.
        start_codes (Tensor): The codes the first rotation is fitted to,
            (k, m) in {-1, +1}.
        iterations (int): Passes. Defaults to 15.
        sigma (float): Weight of the label fit. Defaults to 1.
        delta (float): Weight of the code fit. Defaults to 1e-4.

    Returns:
        Tensor: (m, k) in {-1, +1}, float64.
    """
    labels = label_matrix.double().T
    real = real_codes.double()
    rotation = _rotation(start_codes.double(), real)
    for _ in range(iterations):
        codes = torch.where(rotation @ real >= 0, 1.0,
                            -1.0).to(torch.float64)
        label_map = (sigma * labels @ real.T) @ torch.linalg.pinv(
            sigma * real @ real.T, rtol=_PINV_RTOL)
        real = torch.linalg.pinv(
            sigma * label_map.T @ label_map + delta * rotation.T @ rotation,
            rtol=_PINV_RTOL) @ (sigma * label_map.T @ labels +
                                delta * rotation.T @ codes)
        rotation = _rotation(codes, real)
    return codes.T


def label_matrix_of(labels: Tensor) -> Tensor:
    """(m, C) float64 one-hot of (m,) class ids, or multi-hot as given."""
    if labels.dim() == 2:
        return labels.double()
    return torch.nn.functional.one_hot(labels.long()).double()


def images_off_their_label_code(codes: Tensor, labels: Tensor) -> int:
    """Images whose code differs from the most common code of the images
    with the same label.

    Args:
        codes (Tensor): (m, k).
        labels (Tensor): (m,) class ids or (m, C) multi-hot.

    Returns:
        int: How many of the m images.
    """
    rows = labels[:, None] if labels.dim() == 1 else labels
    _, groups = torch.unique(rows, dim=0, return_inverse=True)
    off = 0
    for group in range(int(groups.max()) + 1 if len(groups) else 0):
        _, counts = torch.unique(codes[groups == group], dim=0,
                                 return_counts=True)
        off += int(counts.sum() - counts.max())
    return off


@MODELS.register_module()
class LabelCodeDatabase(HashDatabase):
    """FISH's fixed label codes of every training image.

    :meth:`prepare` computes them once (the module docstring), in float64,
    from N(0, 1) draws of its generator; the loss gets the batch's codes as
    ``view.batch_database_codes`` (B[omega]) and evaluation ranks against
    all of them. Nothing changes during training.

    Buffers, saved in checkpoints: ``codes`` ((m, k) in {-1, +1}) and
    ``labels`` ((m,) or (m, C)), empty until :meth:`prepare` or a
    checkpoint fills them.

    Args:
        iterations (int): Passes of the alternation. Defaults to 15.
        sigma (float): Weight of the label fit. Defaults to 1.
        delta (float): Weight of the code fit. Defaults to 1e-4.
        code_width (int): k; the retriever passes its head's
            ``relaxed_dims``.
    """

    def __init__(self,
                 iterations: int = 15,
                 sigma: float = 1.0,
                 delta: float = 1e-4,
                 code_width: int = 0):
        super().__init__()
        if iterations < 1 or sigma <= 0 or delta <= 0:
            raise ValueError(
                f'model.database needs iterations >= 1 and positive sigma '
                f'and delta, got {iterations}, {sigma} and {delta}')
        self.iterations = iterations
        self.sigma = sigma
        self.delta = delta
        self.register_buffer('codes', torch.zeros(0, code_width))
        self.register_buffer('labels', torch.zeros(0, dtype=torch.long))

    @property
    def num_database(self) -> int:
        return self.codes.size(0)

    @torch.no_grad()
    def prepare(self, labels: Tensor,
                generator: Optional[torch.Generator] = None) -> None:
        """Compute the label codes, unless a checkpoint holds them
        (then :meth:`check_prepared`). Under DDP rank 0's are broadcast.

        Raises:
            ValueError: More bits than the labels' rank r and the codes do
                not follow the labels (module docstring): names the code
                length asked for and the r bits the labels can give.
        """
        if self.num_database:
            self.check_prepared(labels)
            return
        width = self.codes.size(1)
        matrix = label_matrix_of(labels)
        real = torch.randn(width, len(labels), generator=generator,
                           dtype=torch.float64)
        start = torch.randn(width, len(labels), generator=generator,
                            dtype=torch.float64).sign()
        codes = fish_label_codes(matrix, real, start, self.iterations,
                                 self.sigma, self.delta)
        rank = int(torch.linalg.matrix_rank(matrix))
        if width > rank:
            off = images_off_their_label_code(codes, labels)
            if off:
                raise ModelConfigError(
                    f'model.head.code_length={width} asks FISH for {width}-'
                    f'bit label codes, but the training labels ({len(labels)}'
                    f' x {matrix.size(1)}) have rank {rank}: {width - rank} '
                    f'directions of every code keep its random start instead '
                    f'of its label ({off} of {len(labels)} images got another'
                    f' code than the rest of their class). Codes of up to '
                    f'{rank} bits follow the labels: use code_length <= '
                    f'{rank}')
        self.labels = labels.to(self.codes.device)
        self.codes = codes.to(self.codes)
        if is_distributed():
            broadcast(self.codes, src=0)

    def check_prepared(self, labels: Tensor) -> None:
        if self.num_database != len(labels) or not torch.equal(
                self.labels.cpu(), labels.cpu()):
            raise ModelConfigError(
                f'the loaded label codes ({self.num_database} images) do not '
                f'match the training set ({len(labels)} images, labels in '
                f'dataset order): the checkpoint comes from another dataset')

    def view(self, batch_indices: Tensor, batch_labels: Tensor,
             dtype: torch.dtype) -> DatabaseView:
        """The batch's label codes B[omega] ((n, k), in ``dtype``)."""
        if self.num_database == 0:
            raise RuntimeError(
                'the label codes are not computed: call '
                'model.database.prepare() or train with ADSHRoundHook in '
                'custom_hooks')
        return replace(self.batch_view(batch_indices, batch_labels),
                       batch_database_codes=self.codes[batch_indices].to(
                           dtype))

    def retrieval_codes(self, code_length: int) -> Tuple[Tensor, Tensor]:
        """The label codes and their labels: FISH's database."""
        if self.num_database == 0:
            raise RuntimeError(
                'this model holds no label codes: load a checkpoint trained '
                'by mmqueryopt, or train it first')
        return self.codes[:, :code_length], self.labels

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopt a checkpoint's codes and labels while ours are empty."""
        for name in ('codes', 'labels'):
            saved, ours = state_dict.get(prefix + name), getattr(self, name)
            if saved is None:
                continue
            if name == 'codes' and saved.shape[1:] != ours.shape[1:]:
                raise ValueError(
                    f'checkpoint {prefix}codes has shape '
                    f'{tuple(saved.shape)}, the model (m, {ours.size(1)}): '
                    f'another code length')
            if ours.size(0) == 0:
                setattr(self, name, torch.empty_like(saved,
                                                     device=ours.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
