"""A memory of the network's latest relaxed codes, which pairwise losses
(HashNet, DPSH) pair each training batch with; evaluation encodes the
training images with the network (no learned database).

Both references keep a code memory U and a label memory Y, write the
batch's rows before the loss (``U[ind] = h.detach(); Y[ind] = y``) and pair
the batch with every row: S = [y Y^T > 0] and theta = c * h U^T. Rows that
were never written hold zero codes and no label, so they count as
dissimilar pairs with theta = 0, as in the references. What a row is
differs:

* ``rows='round'`` (aassxun/DSH_Analysis ``hashnet.py``): one row per
  image of a round's sample, at the image's position in that sample; the
  memory is never cleared, so in a new round's first pass the rows still
  hold the previous sample's codes and labels.
* ``rows='dataset'`` (swuxyj/DeepHash-pytorch ``DPSH.py``): one row per
  training image, at its dataset index.
* ``rows='batch'`` (DeepHash-pytorch ``HashNet.py`` at HEAD): no memory;
  the batch is paired with itself, its codes on both sides of theta with
  their gradient.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from mmengine.dist import all_gather, is_distributed
from torch import Tensor

from mmqueryopt.registry import MODELS
from .adsh_database import similarity
from .base import DatabaseView, HashDatabase

_ROWS = ('round', 'dataset', 'batch')


@dataclass
class CodeMemoryView(DatabaseView):
    """The view of a :class:`CodeMemoryDatabase`: S of the batch against
    the memory (in ``similarity``) and the memory's codes.

    Attributes:
        memory_codes (Tensor | None): U, (M, L), detached, the batch's own
            rows included; None when the batch is paired with itself
            (``rows='batch'``: ``similarity`` is then (n, n) and the loss
            takes the batch's codes on both sides).
    """
    memory_codes: Optional[Tensor] = None


@MODELS.register_module()
class CodeMemoryDatabase(HashDatabase):
    """The latest relaxed code and the label of each memory row.

    Buffers, saved in checkpoints: ``codes`` (U, (M, L)) and ``labels``
    ((M,) class ids, -1 where no image was written, or (M, C) multi-hot,
    zero there). M is the training set's size (``rows='dataset'``) or the
    images sampled per round (``rows='round'``, sized at the first round);
    ``rows='batch'`` keeps nothing. :meth:`retrieval_codes` is None:
    evaluate with ``RetrievalDatabaseHook(source='encoded', ...)``.

    Under DDP every rank writes every rank's batch (the batches' rows and
    codes are gathered in :meth:`record`), so the memory is the same on
    all ranks and holds what one process running the whole round would
    hold; each rank's loss pairs its own batch with it.

    Args:
        rows (str): ``'round'``, ``'dataset'`` or ``'batch'`` (see the
            module docstring). Defaults to ``'dataset'``.
        code_width (int): L, the width of a code; the retriever passes its
            head's ``relaxed_dims``.
    """

    def __init__(self, rows: str = 'dataset', code_width: int = 0):
        super().__init__()
        if rows not in _ROWS:
            raise ValueError(f'model.database.rows must be one of {_ROWS}, '
                             f'got {rows!r}')
        self.rows = rows
        self.register_buffer('codes', torch.zeros(0, code_width))
        self.register_buffer('labels', torch.zeros(0, dtype=torch.long))
        # The training set's labels (dataset order) and, for rows='round',
        # each image's row in the current round (-1: not sampled); both are
        # set anew by prepare and start_round, so checkpoints skip them.
        self.register_buffer(
            'dataset_labels', torch.zeros(0, dtype=torch.long),
            persistent=False)
        self.register_buffer(
            'row_of', torch.zeros(0, dtype=torch.long), persistent=False)

    @property
    def num_database(self) -> int:
        """int: The training set's size (0 before :meth:`prepare`)."""
        return self.dataset_labels.size(0)

    @torch.no_grad()
    def prepare(self, labels: Tensor,
                generator: Optional[torch.Generator] = None) -> None:
        """Note the training set's labels; ``rows='dataset'`` sizes the
        memory (empty rows) unless a checkpoint filled it."""
        self.dataset_labels = labels.to(self.codes.device, torch.long)
        if self.rows == 'dataset':
            self._size_memory(len(labels), 'the training set')

    @torch.no_grad()
    def start_round(self, round_index: int, num_rounds: int,
                    sampled_indices: Tensor) -> None:
        """``rows='round'``: each sampled image's row is its position in
        the round's sample; the rows keep what earlier rounds wrote."""
        super().start_round(round_index, num_rounds, sampled_indices)
        if self.rows != 'round':
            return
        self._size_memory(len(sampled_indices),
                          'train_dataloader.sampler.num_samples')
        sampled_indices = sampled_indices.to(self.codes.device)
        self.row_of = torch.full((self.num_database, ), -1, dtype=torch.long,
                                 device=self.codes.device)
        self.row_of[sampled_indices] = torch.arange(
            len(sampled_indices), device=self.codes.device)

    def _size_memory(self, size: int, source: str) -> None:
        """Empty rows for ``size`` images, or check a loaded memory's size
        against them."""
        if self.codes.size(0) == 0:
            like = self.dataset_labels
            self.codes = self.codes.new_zeros(size, self.codes.size(1))
            # No label: -1 matches no class id, zeros no multi-hot label.
            self.labels = (like.new_full((size, ), -1) if like.dim() == 1
                           else like.new_zeros(size, like.size(1)))
        elif self.codes.size(0) != size:
            raise ValueError(
                f'the code memory holds {self.codes.size(0)} rows but '
                f'{source} has {size} images: the checkpoint was trained '
                f'with another dataset or {source}')

    def memory_rows(self, batch_indices: Tensor) -> Tensor:
        """The memory rows of the batch's dataset indices.

        Args:
            batch_indices (Tensor): (n,) dataset indices.

        Returns:
            Tensor: (n,) rows of ``codes`` and ``labels``.
        """
        if self.codes.size(0) == 0 or (self.rows == 'round'
                                       and self.row_of.numel() == 0):
            raise RuntimeError(
                'the code memory is empty: train with ADSHRoundHook in '
                'custom_hooks (it calls model.database.prepare() and '
                'start_round())')
        if self.rows == 'dataset':
            return batch_indices
        rows = self.row_of[batch_indices]
        if bool((rows < 0).any()):
            raise IndexError(
                'a batch image is not in this round\'s sample: '
                "rows='round' needs the RoundSampler's rounds")
        return rows

    @torch.no_grad()
    def record(self, batch_indices: Tensor, relaxed_codes: Tensor) -> None:
        """U[rows] = the batch's codes (detached), Y[rows] = their labels;
        under DDP every rank's batch."""
        if self.rows == 'batch':
            return
        codes = relaxed_codes.detach().to(self.codes.dtype)
        if is_distributed():
            # RoundSampler gives every rank batches of one size.
            batch_indices = torch.cat(all_gather(batch_indices))
            codes = torch.cat(all_gather(codes))
        rows = self.memory_rows(batch_indices)
        self.codes[rows] = codes
        self.labels[rows] = self.dataset_labels[batch_indices]

    def view(self, batch_indices: Tensor, batch_labels: Tensor,
             dtype: torch.dtype) -> CodeMemoryView:
        """S = [y Y^T > 0] of the batch against the memory (or itself) and
        U, in ``dtype``."""
        fields = vars(self.batch_view(batch_indices, batch_labels))
        if self.rows == 'batch':
            fields.update(
                similarity=similarity(batch_labels, batch_labels, dtype))
        else:
            fields.update(
                similarity=similarity(batch_labels, self.labels, dtype),
                memory_codes=self.codes.to(dtype))
        return CodeMemoryView(**fields)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopt a checkpoint's memory size while ours is still empty."""
        for name in ('codes', 'labels'):
            saved, ours = state_dict.get(prefix + name), getattr(self, name)
            if saved is None:
                continue
            # An empty label memory takes any format (class ids or
            # multi-hot); the code width is the head's.
            if saved.shape[1:] != ours.shape[1:] and (name == 'codes'
                                                      or ours.size(0)):
                raise ValueError(
                    f'checkpoint {prefix}{name} has shape '
                    f'{tuple(saved.shape)}, the model {tuple(ours.shape)}: '
                    f'another code length or label format')
            if ours.size(0) == 0:
                setattr(self, name, torch.empty_like(saved,
                                                     device=ours.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
