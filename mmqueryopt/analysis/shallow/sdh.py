"""SDH: supervised discrete hashing (Shen, Shen, Liu and Shen, CVPR 2015).

Codes ``B in {-1, +1}^(N x K)`` of the training images are learned
together with a linear classifier W of the codes and a hash function
``F(x) = phi(x) P`` of RBF anchor features, by minimising (rows are
images; the paper writes columns)::

    O(B, W, P) = ||Y - B W||^2 + lam ||W||^2
                 + nu (||B - Phi P||^2 + rho ||P||^2)

with Y the (N, C) one-hot (or multi-hot) labels and Phi the (N, m + 1)
anchor features of the training images. The paper's objective is the
first three terms; ``rho ||P||^2`` is the ridge the authors' code puts in
its solve for P (``Fmap.lambda = 1e-2``), written into O here so that the
P-step minimises O exactly. Block coordinate descent, one outer iteration
being

* B-step, discrete cyclic coordinate descent (DCC): with
  ``Q = Y W^T + nu Phi P``, O is ``||B W||^2 - 2 tr(B^T Q)`` plus terms
  without B; bit (column) l given the others has the closed-form minimiser
  ``b_l = sign(q_l - B' W' w_l)`` (B', W' without column / row l, w_l row l
  of W); sweeps over the bits repeat until none changes (at most
  ``dcc_sweeps``);
* W-step: ``W = (B^T B + lam I)^-1 B^T Y``;
* P-step: ``P = (Phi^T Phi + rho I)^-1 Phi^T B``.

Every step minimises O over its block given the others, so O never
increases. Unlike the authors' code, whose B-step restarts each outer
iteration from B = 0 (and whose sign(0) = 0), DCC here starts from the
current B: that is what makes the decrease hold. Codes of any image:
``sign(phi(x) P)``, for the database too (the authors' default,
``AsymDist = 0``).
"""
from typing import Optional

import numpy as np

from mmqueryopt.evaluation.functional.codes import sign
from .base import ShallowHash


class SDH(ShallowHash):
    """Supervised discrete hashing with the L2 classification loss.

    Defaults are the authors' demo: 1000 anchors, lam = 1, nu = 1e-5,
    rho = 1e-2, 5 outer iterations, up to 10 DCC sweeps, a random initial
    B. The RBF width is not theirs: their demo fixes sigma = 0.4 for its
    normalised GIST features, which does not fit features of any other
    scale; the default here is the root mean square distance between the
    training features and the anchors, the line their demo leaves commented
    beside it (``sigma = mean(mean(Dis)).^0.5``).

    Args:
        bits (int): Code length K.
        anchors (int): m, RBF anchors drawn without replacement from the
            training features. Defaults to 1000.
        sigma (float, optional): RBF width; None for the root mean square
            training-to-anchor distance. Defaults to None.
        lam (float): lam, the classifier's ridge. Defaults to 1.
        nu (float): nu, the weight of the hash-function fit. Defaults to
            1e-5.
        rho (float): rho, the ridge of P. Defaults to 1e-2.
        iterations (int): Outer iterations. Defaults to 5.
        dcc_sweeps (int): At most this many DCC sweeps per B-step.
            Defaults to 10.
        seed (int): Seed of the anchors and of the initial B. Defaults to 0.

    Attributes:
        anchors (np.ndarray): (m, D) the anchors, after :meth:`fit`.
        sigma (float): The RBF width used.
        codes (np.ndarray): (N, K) the learned B of the training images.
        classifier (np.ndarray): (K, C) W.
        projection (np.ndarray): (m + 1, K) P.
        objective (list[float]): O after the initial W- and P-steps, then
            after each outer iteration.
    """

    supervised = True

    def __init__(self,
                 bits: int,
                 anchors: int = 1000,
                 sigma: Optional[float] = None,
                 lam: float = 1.0,
                 nu: float = 1e-5,
                 rho: float = 1e-2,
                 iterations: int = 5,
                 dcc_sweeps: int = 10,
                 seed: int = 0):
        super().__init__(bits, seed)
        if anchors < 1 or iterations < 0 or dcc_sweeps < 1:
            raise ValueError(
                f'anchors and dcc_sweeps must be >= 1 and iterations >= 0; '
                f'got {anchors}, {dcc_sweeps}, {iterations}')
        if sigma is not None and sigma <= 0:
            raise ValueError(f'sigma must be positive; got {sigma}')
        self.num_anchors = anchors
        self.sigma_option = sigma
        self.sigma = sigma
        self.lam, self.nu, self.rho = lam, nu, rho
        self.iterations = iterations
        self.dcc_sweeps = dcc_sweeps

    def settings(self) -> dict:
        return dict(super().settings(), anchors=self.num_anchors,
                    sigma=self.sigma, lam=self.lam, nu=self.nu, rho=self.rho,
                    iterations=self.iterations, dcc_sweeps=self.dcc_sweeps)

    def _fit(self, features: np.ndarray, labels) -> None:
        num = len(features)
        if self.num_anchors > num:
            raise ValueError(
                f'SDH draws {self.num_anchors} anchors from the training '
                f'features, of which there are {num}')
        targets = label_matrix(labels, num)
        rng = np.random.default_rng(self.seed)
        self.anchors = features[rng.choice(num, self.num_anchors,
                                           replace=False)]
        self.sigma = self.sigma_option
        if self.sigma is None:
            self.sigma = float(
                np.sqrt(squared_distances(features, self.anchors).mean()))
        phi = self._anchor_features(features)
        codes = sign(rng.standard_normal((num, self.bits)))
        classifier = classifier_step(codes, targets, self.lam)
        projection = projection_step(phi, codes, self.rho)
        self.objective = [self._loss(codes, classifier, projection, targets,
                                     phi)]
        for _ in range(self.iterations):
            q = targets @ classifier.T + self.nu * phi @ projection
            codes = dcc_step(q, classifier, codes, self.dcc_sweeps)
            classifier = classifier_step(codes, targets, self.lam)
            projection = projection_step(phi, codes, self.rho)
            self.objective.append(self._loss(codes, classifier, projection,
                                             targets, phi))
        self.codes = codes.astype(np.int8)
        self.classifier, self.projection = classifier, projection

    def _project(self, features: np.ndarray) -> np.ndarray:
        return self._anchor_features(features) @ self.projection

    def _anchor_features(self, features: np.ndarray) -> np.ndarray:
        return rbf_features(features, self.anchors, self.sigma)

    def _loss(self, codes, classifier, projection, targets, phi) -> float:
        return sdh_objective(codes, classifier, projection, targets, phi,
                             self.lam, self.nu, self.rho)


def label_matrix(labels, num: int) -> np.ndarray:
    """Y: (N, C) float64 one-hot of class ids, or multi-hot as given.

    Args:
        labels (np.ndarray): (N,) class ids >= 0 or (N, C) multi-hot.
        num (int): N, checked.

    Returns:
        np.ndarray: (N, C), C = largest class id + 1 for class ids.
    """
    labels = np.asarray(labels)
    if len(labels) != num:
        raise ValueError(f'{len(labels)} labels for {num} features')
    if labels.ndim == 2:
        return labels.astype(np.float64)
    ids = labels.astype(np.int64)
    if ids.min() < 0:
        raise ValueError('class ids must be >= 0')
    onehot = np.zeros((num, int(ids.max()) + 1))
    onehot[np.arange(num), ids] = 1.0
    return onehot


def squared_distances(features: np.ndarray,
                      anchors: np.ndarray) -> np.ndarray:
    """(N, m) squared Euclidean distances, float64, clipped at 0."""
    squared = (np.sum(features**2, axis=1)[:, None] +
               np.sum(anchors**2, axis=1)[None, :] -
               2.0 * features @ anchors.T)
    return np.maximum(squared, 0.0)


def rbf_features(features: np.ndarray, anchors: np.ndarray,
                 sigma: float) -> np.ndarray:
    """phi(x): ``exp(-||x - a_j||^2 / (2 sigma^2))`` for each anchor, then
    a constant 1 (the bias column of the authors' code).

    Args:
        features (np.ndarray): (N, D).
        anchors (np.ndarray): (m, D).
        sigma (float): RBF width.

    Returns:
        np.ndarray: (N, m + 1).
    """
    kernel = np.exp(-squared_distances(features, anchors) /
                    (2.0 * sigma * sigma))
    return np.hstack([kernel, np.ones((len(features), 1))])


def classifier_step(codes: np.ndarray, targets: np.ndarray,
                    lam: float) -> np.ndarray:
    """W-step: ``(B^T B + lam I)^-1 B^T Y``, (K, C)."""
    gram = codes.T @ codes + lam * np.eye(codes.shape[1])
    return np.linalg.solve(gram, codes.T @ targets)


def projection_step(phi: np.ndarray, codes: np.ndarray,
                    rho: float) -> np.ndarray:
    """P-step: ``(Phi^T Phi + rho I)^-1 Phi^T B``, (m + 1, K)."""
    gram = phi.T @ phi + rho * np.eye(phi.shape[1])
    return np.linalg.solve(gram, phi.T @ codes)


def dcc_step(q: np.ndarray, classifier: np.ndarray, codes: np.ndarray,
             sweeps: int) -> np.ndarray:
    """B-step by discrete cyclic coordinate descent, from ``codes``.

    Args:
        q (np.ndarray): (N, K) ``Q = Y W^T + nu Phi P``.
        classifier (np.ndarray): (K, C) W.
        codes (np.ndarray): (N, K) the current B, the starting point.
        sweeps (int): At most this many passes over the bits; stops after
            a pass that changes nothing.

    Returns:
        np.ndarray: (N, K) float64 new B in {-1, +1}.
    """
    codes = codes.astype(np.float64)
    weights = classifier @ classifier.T  # (K, K): w_l . w_j
    for _ in range(sweeps):
        changed = False
        for bit in range(codes.shape[1]):
            # B' W' w_l: every bit's contribution but bit l's own.
            others = codes @ weights[:, bit] - codes[:, bit] * weights[bit,
                                                                       bit]
            column = sign(q[:, bit] - others)
            changed = changed or bool(np.any(column != codes[:, bit]))
            codes[:, bit] = column
        if not changed:
            break
    return codes


def sdh_objective(codes: np.ndarray, classifier: np.ndarray,
                  projection: np.ndarray, targets: np.ndarray,
                  phi: np.ndarray, lam: float, nu: float,
                  rho: float) -> float:
    """O(B, W, P) of the module docstring."""
    return float(
        np.sum((targets - codes @ classifier)**2) +
        lam * np.sum(classifier**2) +
        nu * (np.sum((codes - phi @ projection)**2) +
              rho * np.sum(projection**2)))
