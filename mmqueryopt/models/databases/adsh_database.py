"""ADSH's learned database (Jiang & Li, AAAI 2018): discrete codes B of every
training image, solved bit by bit after each round.

The network's relaxed codes F of the sampled images are fitted to B, and B
is then solved in closed form one bit (column) at a time. Both halves
optimise the same objective

    J(B) = ||F B^T - L S||^2 + gamma ||B[omega] - F||^2,

with S the class similarity of the sampled and database images, L the number
of relaxed bits and omega the sampled images' database indices. S is {0, 1}
(QueryOpt) or the soft form of the SEMICON / A2-Net / AGMH code: +1 for a
shared class, -P/N otherwise, with P and N the similar and dissimilar pairs
of the round's sampled images against the database.
"""
from dataclasses import replace
from typing import Optional, Tuple

import torch
from mmengine.dist import all_reduce, broadcast, is_distributed
from torch import Tensor

from mmqueryopt.registry import MODELS
from ..errors import ModelConfigError
from ..hash_retriever import binarize
from .base import DatabaseView, HashDatabase

_SIMILARITIES = ('binary', 'soft')


def similarity(labels_a: Tensor, labels_b: Tensor,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """S[i, j] = 1 if ``a_i`` and ``b_j`` share a class, else 0.

    Args:
        labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
        labels_b (Tensor): (m,) class ids or (m, C) multi-hot.
        dtype (torch.dtype): Of the result.

    Returns:
        Tensor: (n, m).
    """
    if labels_a.dim() == 1:
        return (labels_a[:, None] == labels_b[None, :]).to(dtype)
    return (labels_a.float() @ labels_b.float().T > 0).to(dtype)


def soft_negative(labels_a: Tensor, labels_b: Tensor) -> float:
    """The soft similarity's value for a dissimilar pair: -P/N.

    P and N count the pairs of ``labels_a`` x ``labels_b`` that share a
    class and that do not (the authors' ``r = sum(S) / sum(1 - S)`` over S in
    {-1, +1}, then ``S * (1 + r) - r``).

    Args:
        labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
        labels_b (Tensor): (m,) or (m, C).

    Returns:
        float: -P/N; 0 when every pair shares a class.
    """
    return _negative_ratio(similarity(labels_a, labels_b, torch.bool))


def _negative_ratio(sim: Tensor) -> float:
    """-P/N of a similarity matrix (nonzero = similar), counted exactly."""
    similar = int((sim > 0).sum())
    dissimilar = sim.numel() - similar
    return -similar / dissimilar if dissimilar else 0.0


def _soften(sim: Tensor, negative: float) -> Tensor:
    """The soft form of a {0, 1} similarity: 1 stays, 0 becomes
    ``negative``."""
    return torch.where(sim > 0, sim.new_tensor(1.0), sim.new_tensor(negative))


@MODELS.register_module()
class ADSHDatabase(HashDatabase):
    """B, U and the labels of every training image, and B's solver.

    Buffers, saved in every checkpoint: ``codes`` (B, (m, L): one relaxed-
    width code per training image), ``sampled_codes`` (U, (m, L): the latest
    network output of each image sampled this round, zeros elsewhere) and
    ``labels`` ((m,) or (m, C)). They are empty until :meth:`prepare` sizes
    them or a checkpoint fills them. Under DDP each rank writes only its own
    rows of U; :meth:`end_round` sums U over the ranks, solves B and
    broadcasts rank 0's copy, so that every rank holds the same B bit for
    bit (the retriever keeps DDP's buffer broadcast off them).

    Args:
        gamma (float): Weight of the quantisation term, in the loss (through
            :meth:`view`) and in B's update alike. Defaults to 200.
        similarity (str): ``'binary'``: S in {0, 1} (QueryOpt, ADSH).
            ``'soft'``: +1 for a shared class, -P/N otherwise, P/N counted
            over the round's sampled images against the database (SEMICON,
            A2-Net, AGMH code). Defaults to ``'binary'``.
        code_width (int): L, the width of B; the retriever passes its
            head's ``relaxed_dims``.
    """

    holds_codes = True

    def __init__(self,
                 gamma: float = 200.0,
                 similarity: str = 'binary',
                 code_width: int = 0):
        super().__init__()
        if similarity not in _SIMILARITIES:
            raise ValueError(f'model.database.similarity must be one of '
                             f'{_SIMILARITIES}, got {similarity!r}')
        self.gamma = gamma
        self.similarity = similarity
        self.register_buffer('codes', torch.zeros(0, code_width))
        self.register_buffer('sampled_codes', torch.zeros(0, code_width))
        self.register_buffer('labels', torch.zeros(0, dtype=torch.long))
        # -P/N of the round's sample (soft S); None until a round starts.
        self.round_negative: Optional[float] = None

    @property
    def num_database(self) -> int:
        return self.codes.size(0)

    @torch.no_grad()
    def prepare(self, labels: Tensor,
                generator: Optional[torch.Generator] = None) -> None:
        """Size the database for ``labels`` and draw B from N(0, 1), unless
        a checkpoint filled it already (then :meth:`check_prepared`).

        B starts as unsigned Gaussian values, as in the authors' code; the
        first :meth:`end_round` makes it binary. Under DDP rank 0's draw is
        broadcast (seeds may differ per rank).
        """
        if self.num_database:
            self.check_prepared(labels)
            return
        # In the buffers' float type (a float64 model keeps float64 B).
        like = dict(device=self.codes.device, dtype=self.codes.dtype)
        width = self.codes.size(1)
        self.labels = labels.to(device=like['device'], dtype=torch.long)
        self.codes = torch.randn(len(labels), width,
                                 generator=generator).to(**like)
        self.sampled_codes = torch.zeros(len(labels), width, **like)
        if is_distributed():
            broadcast(self.codes, src=0)

    def check_prepared(self, labels: Tensor) -> None:
        if self.num_database != len(labels) or not torch.equal(
                self.labels.cpu(), labels.cpu()):
            raise ModelConfigError(
                f'the loaded database ({self.num_database} images) does not '
                f'match the training set ({len(labels)} images, labels in '
                f'dataset order): the checkpoint comes from another dataset')

    @torch.no_grad()
    def start_round(self, round_index: int, num_rounds: int,
                    sampled_indices: Tensor) -> None:
        """Forget U and note the round's -P/N (soft S)."""
        super().start_round(round_index, num_rounds, sampled_indices)
        self.sampled_codes.zero_()
        sampled_indices = sampled_indices.to(self.labels.device)
        self.round_negative = (
            soft_negative(self.labels[sampled_indices], self.labels)
            if self.similarity == 'soft' else None)

    def target_similarity(self, labels_a: Tensor, labels_b: Tensor,
                          dtype: torch.dtype = torch.float32) -> Tensor:
        """S for ``labels_a`` x ``labels_b`` in this database's form.

        Args:
            labels_a (Tensor): (n,) class ids or (n, C) multi-hot.
            labels_b (Tensor): (m,) or (m, C).
            dtype (torch.dtype): Of the result.

        Returns:
            Tensor: (n, m). The soft form's dissimilar value is the round's
            (:meth:`start_round`), else -P/N of these labels.
        """
        sim = similarity(labels_a, labels_b, dtype)
        if self.similarity == 'binary':
            return sim
        return _soften(sim, self.round_negative
                       if self.round_negative is not None else
                       _negative_ratio(sim))

    @torch.no_grad()
    def record(self, batch_indices: Tensor, relaxed_codes: Tensor) -> None:
        self._check_not_empty()
        # U stays in its own dtype (fp32 under bf16 autocast).
        self.sampled_codes[batch_indices] = relaxed_codes.detach().to(
            self.sampled_codes.dtype)

    def view(self, batch_indices: Tensor, batch_labels: Tensor,
             dtype: torch.dtype) -> DatabaseView:
        """S of the batch against the database, B and B[omega], in
        ``dtype``."""
        self._check_not_empty()
        codes = self.codes.to(dtype)
        return replace(
            self.batch_view(batch_indices, batch_labels),
            similarity=self.target_similarity(batch_labels, self.labels,
                                              dtype),
            database_codes=codes,
            batch_database_codes=codes[batch_indices],
            gamma=self.gamma)

    def _check_not_empty(self) -> None:
        if self.num_database == 0:
            raise RuntimeError(
                'the ADSH database is empty: call model.database.prepare() '
                'or train with ADSHRoundHook in custom_hooks')

    @torch.no_grad()
    def end_round(self, sampled_indices: Tensor) -> None:
        """ADSH's discrete step over the round's sampled images.

        Under DDP each rank wrote only its shard's rows of U, so the sum over
        ranks is the full U; B is solved on every rank and rank 0's copy is
        broadcast so that all ranks hold the same codes bit for bit.
        """
        sampled_indices = sampled_indices.to(self.codes.device)
        sampled_codes = self.sampled_codes[sampled_indices]
        if is_distributed():
            all_reduce(sampled_codes, op='sum')
        codes = self.solve(sampled_codes, sampled_indices)
        if is_distributed():
            broadcast(codes, src=0)
        self.codes.copy_(codes)

    @torch.no_grad()
    def solve(self, sampled_codes: Tensor, sampled_indices: Tensor) -> Tensor:
        """Minimise J over B one column at a time, from the current B.

        With V = U^T U, column b's exact minimiser given the others is
        ``sign(Q_b - B_rest V_rest,b)`` where ``Q = L S^T U + gamma U_full``
        (U_full: U scattered into the sampled rows, zeros elsewhere).

        Args:
            sampled_codes (Tensor): U, (s, L) the relaxed codes of the
                round's sampled images.
            sampled_indices (Tensor): (s,) their database rows.

        Returns:
            Tensor: the new B, (m, L) in {-1, +1}. A zero argument gives +1.
        """
        num_bits = sampled_codes.size(1)
        sim = similarity(self.labels[sampled_indices], self.labels,
                         sampled_codes.dtype)
        if self.similarity == 'soft':
            # This sample's own -P/N (the round's, when start_round saw it).
            sim = _soften(sim, _negative_ratio(sim))
        scattered = torch.zeros_like(self.codes)
        scattered[sampled_indices] = sampled_codes
        target = num_bits * sim.T @ sampled_codes + self.gamma * scattered
        gram = sampled_codes.T @ sampled_codes
        codes = self.codes.clone()
        for bit in range(num_bits):
            rest = torch.arange(num_bits, device=codes.device) != bit
            arg = target[:, bit] - codes[:, rest] @ gram[rest, bit]
            codes[:, bit] = binarize(arg)
        return codes

    def retrieval_codes(self, code_length: int) -> Tuple[Tensor, Tensor]:
        """The first ``code_length`` columns of B, binarised, and the
        labels: the authors' protocol (the query branch's bits)."""
        if self.num_database == 0:
            raise RuntimeError(
                'this model has no learned database codes: load a checkpoint '
                "trained by mmqueryopt, or evaluate with the database encoded "
                "(tools/test.py --database encoded)")
        return binarize(self.codes[:, :code_length]), self.labels

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Adopt a checkpoint's database size while ours is still empty."""
        for name in ('codes', 'sampled_codes', 'labels'):
            saved = state_dict.get(prefix + name)
            if saved is None:
                continue
            ours = getattr(self, name)
            if saved.shape[1:] != ours.shape[1:]:
                raise ValueError(
                    f'checkpoint {prefix}{name} has shape '
                    f'{tuple(saved.shape)}, the model expects (m, '
                    f'{", ".join(map(str, ours.shape[1:]))}): relaxed_dims '
                    f'or label format differ from the config')
            if ours.size(0) == 0:
                setattr(self, name,
                        torch.empty_like(saved, device=ours.device))
            elif saved.size(0) != ours.size(0):
                raise ValueError(
                    f'checkpoint {prefix}{name} holds {saved.size(0)} '
                    f'database images but the training set has '
                    f'{ours.size(0)}: the checkpoint was trained on another '
                    f'dataset or split')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
