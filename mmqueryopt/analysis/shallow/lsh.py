"""LSH: signs of random Gaussian projections (Charikar, STOC 2002), the
floor every hashing table implicitly has."""
import numpy as np

from .base import ShallowHash


class LSH(ShallowHash):
    """Sign random projections of the centred features.

    ``b = sign((x - mean) W)`` with ``W`` (D, K) i.i.d. standard normal,
    drawn from ``numpy.random.default_rng(seed)``; the mean is the training
    features'. Two centred vectors at angle theta differ in each bit with
    probability theta / pi. Learns nothing but the mean.

    Args:
        bits (int): Code length K, at most the feature dimension (more
            projections than dimensions add only correlated bits).
        seed (int): Seed of W. Defaults to 0.
    """

    @staticmethod
    def max_bits(dim: int, num_items: int) -> int:
        return dim

    def _fit(self, features: np.ndarray, labels) -> None:
        self.mean = features.mean(axis=0)
        rng = np.random.default_rng(self.seed)
        self.projection = rng.standard_normal((features.shape[1], self.bits))

    def _project(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) @ self.projection
