"""ITQ: iterative quantisation (Gong and Lazebnik, CVPR 2011; TPAMI 2013).

PCA to K dimensions, then the rotation R of the projected data V that
brings it closest to the vertices of the hypercube: minimise the
quantisation loss ``Q(B, R) = ||B - V R||_F^2`` over codes
``B in {-1, +1}^(N x K)`` and orthogonal R by alternating

* B-step: ``B = sign(V R)`` (R fixed), and
* R-step: the orthogonal Procrustes problem (B fixed): with the SVD
  ``V^T B = U S W^T``, ``R = U W^T`` maximises ``tr(B^T V R)``.

Each step minimises Q over its block, so Q never increases.
"""
import numpy as np

from mmqueryopt.evaluation.functional.codes import sign
from .base import ShallowHash


class ITQ(ShallowHash):
    """PCA plus iterative rotation (the paper's "PCA-ITQ").

    Args:
        bits (int): Code length K, at most min(D, N): the PCA's dimensions.
        iterations (int): Alternations of the B- and R-steps. Defaults to
            50, the paper's.
        seed (int): Seed of the initial rotation (the left singular vectors
            of a standard normal K x K matrix, as the authors' code).
            Defaults to 0.

    Attributes:
        mean (np.ndarray): (D,) training mean.
        pca (np.ndarray): (D, K) top-K principal directions, by decreasing
            variance.
        rotation (np.ndarray): (K, K) orthogonal R.
        objective (list[float]): ``Q(sign(V R_t), R_t)`` for
            ``t = 0..iterations`` (the initial rotation first).
    """

    def __init__(self, bits: int, iterations: int = 50, seed: int = 0):
        super().__init__(bits, seed)
        if iterations < 0:
            raise ValueError(f'iterations must be >= 0; got {iterations}')
        self.iterations = iterations

    @staticmethod
    def max_bits(dim: int, num_items: int) -> int:
        return min(dim, num_items)

    def settings(self) -> dict:
        return dict(super().settings(), iterations=self.iterations)

    def _fit(self, features: np.ndarray, labels) -> None:
        self.mean = features.mean(axis=0)
        self.pca = principal_directions(features - self.mean, self.bits)
        projected = (features - self.mean) @ self.pca
        rng = np.random.default_rng(self.seed)
        rotation = np.linalg.svd(rng.standard_normal(
            (self.bits, self.bits)))[0]
        self.objective = []
        for step in range(self.iterations + 1):
            codes = sign(projected @ rotation)
            self.objective.append(
                quantization_loss(codes, projected, rotation))
            if step < self.iterations:
                rotation = procrustes_rotation(projected, codes)
        self.rotation = rotation

    def _project(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) @ self.pca @ self.rotation


def principal_directions(centred: np.ndarray, k: int) -> np.ndarray:
    """The top-k eigenvectors of the covariance of centred data.

    Args:
        centred (np.ndarray): (N, D) float64, zero column means.
        k (int): How many, <= D.

    Returns:
        np.ndarray: (D, k), orthonormal columns by decreasing eigenvalue.
    """
    covariance = centred.T @ centred / len(centred)
    values, vectors = np.linalg.eigh(covariance)
    # eigh sorts ascending; stable so that equal eigenvalues keep an order.
    order = np.argsort(-values, kind='stable')[:k]
    return vectors[:, order]


def procrustes_rotation(projected: np.ndarray,
                        codes: np.ndarray) -> np.ndarray:
    """The orthogonal R minimising ``||codes - projected R||_F^2``.

    Args:
        projected (np.ndarray): (N, K) V.
        codes (np.ndarray): (N, K) B.

    Returns:
        np.ndarray: (K, K) ``U W^T`` of the SVD ``V^T B = U S W^T``.
    """
    left, _, right_t = np.linalg.svd(projected.T @ codes)
    return left @ right_t


def quantization_loss(codes: np.ndarray, projected: np.ndarray,
                      rotation: np.ndarray) -> float:
    """ITQ's objective ``||B - V R||_F^2``.

    Args:
        codes (np.ndarray): (N, K) B in {-1, +1}.
        projected (np.ndarray): (N, K) V.
        rotation (np.ndarray): (K, K) R.

    Returns:
        float: The loss.
    """
    return float(np.sum((codes - projected @ rotation)**2))
