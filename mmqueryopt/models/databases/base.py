"""The database slot of a hashing model: what training fits the network to,
and what evaluation ranks the queries against."""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn


@dataclass
class DatabaseView:
    """What a loss sees of the database for one batch, and where training
    stands.

    Attributes:
        similarity (Tensor | None): S, (n, m), the target similarity of the
            batch's images to every database image, in the codes' dtype;
            None for a database that keeps no codes.
        database_codes (Tensor | None): B, (m, L).
        batch_database_codes (Tensor | None): B[omega], (n, L), the batch's
            own rows of B.
        gamma (float): Weight of the quantisation term ||F - B[omega]||^2
            in the objective that the database solves too.
        round_index (int): The 0-based training round; -1 before the first.
        num_rounds (int): Rounds of the run; 0 when not told.
        pass_index (int): The 0-based pass over the round's images (the
            authors' epoch within an iteration); 0 when not told.
        num_passes (int): Passes per round; 1 when not told.
        labels (Tensor | None): The batch's labels, (n,) class ids or
            (n, C) multi-hot.
        indices (Tensor | None): The batch's database rows omega, (n,).
    """
    similarity: Optional[Tensor] = None
    database_codes: Optional[Tensor] = None
    batch_database_codes: Optional[Tensor] = None
    gamma: float = 0.0
    round_index: int = -1
    num_rounds: int = 0
    pass_index: int = 0
    num_passes: int = 1
    labels: Optional[Tensor] = None
    indices: Optional[Tensor] = None


class HashDatabase(nn.Module):
    """Base of the database strategies (the ``model.database`` slot).

    A training round (one MMEngine epoch) is told by the round hook:
    :meth:`prepare` once with the training set's labels, then
    :meth:`start_round` and :meth:`end_round` around each round. In between,
    :class:`~mmqueryopt.models.HashRetriever` hands every batch's relaxed
    codes to :meth:`record` and asks :meth:`view` what its loss sees.
    Whatever a strategy keeps (codes, labels) lives in buffers, so that
    checkpoints carry it. This base keeps nothing: its view holds the round
    only, and the database for evaluation is the network's own codes of
    the training images (:meth:`retrieval_codes` returns None).
    """

    #: Whether :meth:`retrieval_codes` gives the database evaluation ranks
    #: against (ADSH's B); else evaluation encodes the training images
    #: (``RetrievalDatabaseHook(source='auto')`` reads it).
    holds_codes = False

    def __init__(self):
        super().__init__()
        self.round_index = -1
        self.num_rounds = 0
        self.pass_index = 0
        self.num_passes = 1

    @property
    def num_database(self) -> int:
        """int: Database images held; 0 for a strategy that holds none."""
        return 0

    def prepare(self, labels: Tensor,
                generator: Optional[torch.Generator] = None) -> None:
        """Before training: the training set's labels in dataset order
        (row i is dataset index i).

        Args:
            labels (Tensor): (m,) class ids or (m, C) multi-hot.
            generator (torch.Generator, optional): For reproducible state.
        """

    def check_prepared(self, labels: Tensor) -> None:
        """Refuse state (from a checkpoint) that is not this training set's.

        Args:
            labels (Tensor): (m,) or (m, C), the training set's labels.
        """

    def start_round(self, round_index: int, num_rounds: int,
                    sampled_indices: Tensor) -> None:
        """Before a training round.

        Args:
            round_index (int): 0-based.
            num_rounds (int): Rounds of the run.
            sampled_indices (Tensor): (s,) the round's database rows over
                all ranks.
        """
        self.round_index = round_index
        self.num_rounds = num_rounds

    def start_pass(self, pass_index: int, num_passes: int) -> None:
        """Before each training batch: the pass over the round's images it
        belongs to (0-based), of ``num_passes``."""
        self.pass_index = pass_index
        self.num_passes = num_passes

    def batch_view(self, batch_indices: Tensor,
                   batch_labels: Tensor) -> DatabaseView:
        """Where training stands, and the batch: the round, the pass, the
        batch's labels and rows; no codes. Parts that declare
        ``needs_batch`` receive it before the forward
        (:class:`~mmqueryopt.models.HashRetriever`).

        Args:
            batch_indices (Tensor): (n,) the batch's database rows.
            batch_labels (Tensor): (n,) or (n, C).

        Returns:
            DatabaseView: Without similarity and codes.
        """
        return DatabaseView(round_index=self.round_index,
                            num_rounds=self.num_rounds,
                            pass_index=self.pass_index,
                            num_passes=self.num_passes,
                            labels=batch_labels,
                            indices=batch_indices)

    def record(self, batch_indices: Tensor, relaxed_codes: Tensor) -> None:
        """A training batch's relaxed codes (detached), (n, L), at their
        database rows ``batch_indices`` (n,). Called before :meth:`view`,
        so that a memory of codes (HashNet, DPSH) holds the batch's own."""

    def view(self, batch_indices: Tensor, batch_labels: Tensor,
             dtype: torch.dtype) -> DatabaseView:
        """What the loss of a batch sees.

        Args:
            batch_indices (Tensor): (n,) the batch's database rows.
            batch_labels (Tensor): (n,) or (n, C).
            dtype (torch.dtype): Of the tensors in the view.

        Returns:
            DatabaseView: Here :meth:`batch_view`: the round, the pass and
            the batch; subclasses add their codes with
            ``dataclasses.replace``.
        """
        return self.batch_view(batch_indices, batch_labels)

    def end_round(self, sampled_indices: Tensor) -> None:
        """After a training round.

        Args:
            sampled_indices (Tensor): (s,) the round's database rows.
        """

    def retrieval_codes(self,
                        code_length: int) -> Optional[Tuple[Tensor, Tensor]]:
        """The database that evaluation ranks queries against, if this
        strategy holds one.

        Args:
            code_length (int): k, the bits of a code.

        Returns:
            tuple[Tensor, Tensor] | None: (m, k) codes in {-1, +1} and
            their labels; None when the database is the network's codes of
            the training images, encoded at evaluation.
        """
        return None
