"""What every shallow hash function shares: fit on the database's
features, encode any features, in float64 numpy."""
from typing import List, Optional

import numpy as np

from mmqueryopt.evaluation.functional.codes import sign


class ShallowHash:
    """A hash function learned from frozen features.

    Subclasses implement :meth:`_fit` (setting what :meth:`_project`
    needs) and :meth:`_project`; codes are the signs of the projection,
    ties at 0 to +1 as every code of the package.

    Args:
        bits (int): Code length K, >= 1.
        seed (int): Seed of the method's random draws. Defaults to 0.

    Attributes:
        objective (list[float]): The method's objective after each
            iteration (first entry: at its initial point); empty for
            methods without one.
    """

    #: Whether :meth:`fit` needs labels.
    supervised = False

    def __init__(self, bits: int, seed: int = 0):
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
                or bits < 1:
            raise ValueError(f'bits must be a positive int; got {bits!r}')
        self.bits = int(bits)
        self.seed = seed
        self.objective: List[float] = []
        self._fitted = False

    @staticmethod
    def max_bits(dim: int, num_items: int) -> Optional[int]:
        """The longest code the method can learn from ``num_items``
        ``dim``-dimensional features; None for no limit.

        Args:
            dim (int): The feature dimension D.
            num_items (int): The training (database) size N.
        """
        return None

    def fit(self, features, labels=None) -> 'ShallowHash':
        """Learn the hash function.

        Args:
            features (np.ndarray): (N, D) training features.
            labels (np.ndarray, optional): (N,) class ids or (N, C)
                multi-hot; required by supervised methods.

        Returns:
            ShallowHash: ``self``.

        Raises:
            ValueError: Too many bits for the features (:meth:`max_bits`),
                or a supervised method without labels.
        """
        features = _as_matrix(features, 'features')
        limit = self.max_bits(features.shape[1], features.shape[0])
        if limit is not None and self.bits > limit:
            raise ValueError(
                f'{type(self).__name__} gives at most {limit} bits from '
                f'{features.shape[0]} features of dimension '
                f'{features.shape[1]}; asked for {self.bits}')
        if self.supervised and labels is None:
            raise ValueError(f'{type(self).__name__} needs labels')
        self._fit(features, labels)
        self._fitted = True
        return self

    def encode(self, features) -> np.ndarray:
        """Binary codes of features.

        Args:
            features (np.ndarray): (M, D) features, D as in :meth:`fit`.

        Returns:
            np.ndarray: (M, K) int8 in {-1, +1}.
        """
        if not self._fitted:
            raise RuntimeError(f'{type(self).__name__}.fit comes first')
        return sign(self._project(_as_matrix(features,
                                             'features'))).astype(np.int8)

    def settings(self) -> dict:
        """The method's parameters, for a results file."""
        return dict(bits=self.bits, seed=self.seed)

    def _fit(self, features: np.ndarray, labels) -> None:
        raise NotImplementedError

    def _project(self, features: np.ndarray) -> np.ndarray:
        """(M, D) float64 to the (M, K) real values whose signs are the
        codes."""
        raise NotImplementedError


def _as_matrix(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not values.size:
        raise ValueError(f'{name} must be a non-empty (N, D) matrix; got '
                         f'shape {values.shape}')
    return values
