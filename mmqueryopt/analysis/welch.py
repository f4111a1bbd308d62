"""The Welch bound beside a trained model's codes (QueryOpt's Figure 3).

QueryOpt (Sec. 3.3, Eqs. 8-9, proof in Appendix D) picks one training image
of each of the M classes, takes their relaxed codes ``x_1 .. x_M`` in R^d
and looks at ``mu = max_{i != j} |<x_i, x_j>| / (|x_i| |x_j|)``, the largest
cosine between two classes. For M > d unit vectors the Welch bound (Welch,
1974) keeps it away from 0::

    mu >= sqrt((M - d) / (d (M - 1)))

The paper's proof bounds the mean of the squared off-diagonal Gram entries
by ``(M - d) / (d (M - 1))`` and then the maximum by the mean; the square
root puts it on the scale of a cosine, as the paper plots it. For M <= d
there are M orthogonal vectors, and the bound is 0. The auxiliary branches
decode the k queries N times in training, so ADSH's loss sees codes of
k * N dimensions, where the bound is lower; at inference only the k bits of
branch 0 remain.

Plots use matplotlib on its Agg backend, imported when first drawing.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from .figures import DPI, pyplot, save_figure

FIGSIZE = (6.4, 4.8)  # inches: 640 x 480 pixels
# The models' markers, apart from the curves' default colour cycle.
_MODEL_COLORS = ['k', 'tab:brown', 'tab:pink', 'tab:olive', 'tab:gray']


def welch_bound(num_vectors, dims) -> np.ndarray:
    """The Welch bound on the largest |cosine| of M unit vectors in R^d.

    Args:
        num_vectors (int | array-like): M, at least 2 (a pair needs two).
        dims (int | array-like): d, at least 1; broadcast with M.

    Returns:
        np.ndarray: float64 ``sqrt(max(M - d, 0) / (d (M - 1)))``, of the
        broadcast shape (0-d for two ints).

    Raises:
        ValueError: Some M < 2 or some d < 1.
    """
    num = np.asarray(num_vectors, dtype=np.float64)
    dims = np.asarray(dims, dtype=np.float64)
    if np.any(num < 2):
        raise ValueError(f'the Welch bound needs at least 2 vectors; got '
                         f'M = {num.min():g}')
    if np.any(dims < 1):
        raise ValueError(f'the Welch bound needs a dimension of at least 1; '
                         f'got d = {dims.min():g}')
    return np.sqrt(np.maximum(num - dims, 0) / (dims * (num - 1)))


def cross_cosines(vectors: np.ndarray) -> np.ndarray:
    """The |cosine| of every pair of distinct rows.

    Args:
        vectors (np.ndarray): (M, d), no zero row.

    Returns:
        np.ndarray: (M (M - 1) / 2,) float64, pairs (i, j) with i < j in
        row-major order.

    Raises:
        ValueError: A row is zero (it has no direction).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms == 0):
        raise ValueError(f'row {int(np.argmin(norms))} of the codes is zero: '
                         f'its cosine with other codes is undefined')
    unit = vectors / norms[:, None]
    upper = np.triu_indices(len(unit), k=1)
    return np.abs(unit @ unit.T)[upper]


def one_per_class(labels: np.ndarray, num_draws: int,
                  seed: int = 0) -> np.ndarray:
    """Draw one image of each class, ``num_draws`` times (the paper's
    "randomly select one image from each category").

    Args:
        labels (np.ndarray): (N,) class ids of a split.
        num_draws (int): Independent draws.
        seed (int): Seed of the draws. Defaults to 0.

    Returns:
        np.ndarray: (num_draws, M) int64 indices into ``labels``; column c
        holds images of the c-th smallest class id present.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    return np.array([[rng.choice(rows) for rows in members]
                     for _ in range(num_draws)], dtype=np.int64).reshape(
                         num_draws, len(members))


def branch_bits(model, inputs):
    """The relaxed bits of every auxiliary branch, as training decodes them.

    Only the head's own ``training`` flag is set, which selects the
    branches (:meth:`QueryHashHead.forward`); its submodules, the backbone
    and the neck stay in eval mode (BatchNorm's running statistics, no
    dropout), so the first k columns are the inference codes.

    Args:
        model: A ``HashRetriever`` in eval mode.
        inputs (Tensor): (b, 3, H, W) preprocessed images.

    Returns:
        Tensor: (b, relaxed_dims), branch-major (columns ``i*k .. (i+1)*k
        - 1`` are branch i).
    """
    head = model.head
    was_training = head.training
    head.training = True
    try:
        return model.train_outputs(inputs)['relaxed_codes']
    finally:
        head.training = was_training


def has_branches(model) -> bool:
    """Whether the model's head decodes auxiliary branches in training."""
    return (hasattr(model.head, 'branch_queries')
            and model.head.relaxed_dims > model.code_length)


def _summary(values: Sequence[float]) -> dict:
    """Each draw's value, their mean, minimum and maximum."""
    values = [float(v) for v in values]
    return dict(draws=values, mean=float(np.mean(values)),
                min=min(values), max=max(values))


def measure_codes(codes: np.ndarray, draws: np.ndarray,
                  widths: Dict[str, int]) -> List[dict]:
    """The largest and root-mean-square cross-class |cosine| of each draw,
    for the codes' leading columns of each width.

    Args:
        codes (np.ndarray): (N, D) relaxed codes of the drawn images.
        draws (np.ndarray): (R, M) rows of ``codes``, one image per class.
        widths (dict[str, int]): Name to number of leading columns
            (e.g. ``{'inference': k, 'training': k * N}``).

    Returns:
        list[dict]: One per width: ``name``, ``dims`` d, ``max_cosine`` and
        ``rms_cosine`` (``draws``, ``mean``, ``min``, ``max`` over the
        draws) and ``bound``, the Welch bound at (M, d).
    """
    results = []
    for name, dims in widths.items():
        largest, rms = [], []
        for rows in draws:
            pairs = cross_cosines(codes[rows, :dims])
            largest.append(pairs.max())
            rms.append(np.sqrt(np.mean(pairs**2)))
        results.append(
            dict(name=name, dims=int(dims), max_cosine=_summary(largest),
                 rms_cosine=_summary(rms),
                 bound=float(welch_bound(draws.shape[1], dims))))
    return results


def measure_model(model, loader, num_draws: int = 10, seed: int = 0,
                  progress: bool = False) -> dict:
    """Eq. 8's mu of a trained model on a labelled split.

    Only the drawn images are encoded, with the loader's dataset, batch
    size and workers.

    Args:
        model: A ``HashRetriever`` in eval mode.
        loader: A dataloader of the split (test transforms, fixed order);
            its dataset gives ``get_gt_labels()``.
        num_draws (int): Draws of one image per class. Defaults to 10.
        seed (int): Seed of the draws. Defaults to 0.
        progress (bool): Show the encoding's progress bar.

    Returns:
        dict: ``num_classes`` M, ``code_length`` k, ``relaxed_dims`` (k
        times the branches), ``num_draws``, ``seed``, ``indices`` (R, M)
        dataset indices of the drawn images, ``classes`` (M,) their class
        ids, and ``widths`` (:func:`measure_codes`): ``inference`` at k
        and, for a head with auxiliary branches, ``training`` at k * N.

    Raises:
        ValueError: The split has fewer than 2 classes.
    """
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader, Subset

    from mmqueryopt.retrieval.encoder import encode_outputs, relaxed_bits
    labels = np.asarray(loader.dataset.get_gt_labels(), dtype=np.int64)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(f'the split has {len(classes)} class; a '
                         f'cross-class cosine needs at least 2')
    draws = one_per_class(labels, num_draws, seed)
    chosen, rows = np.unique(draws, return_inverse=True)
    subset = DataLoader(
        Subset(loader.dataset, chosen.tolist()),
        batch_size=loader.batch_size, shuffle=False,
        num_workers=loader.num_workers, collate_fn=pseudo_collate)
    widths = {'inference': model.code_length}
    compute = relaxed_bits
    if has_branches(model):
        widths['training'] = model.head.relaxed_dims
        compute = branch_bits
    codes, _, _ = encode_outputs(model, subset, compute, progress)
    return dict(
        num_classes=int(len(classes)),
        code_length=int(model.code_length),
        relaxed_dims=int(model.head.relaxed_dims),
        num_draws=int(num_draws),
        seed=int(seed),
        indices=draws.tolist(),
        classes=classes.tolist(),
        widths=measure_codes(codes, rows.reshape(draws.shape), widths))


def bound_curves(num_classes: Sequence[int],
                 dims: Sequence[int]) -> List[dict]:
    """The bound over ``dims`` for each class number.

    Returns:
        list[dict]: ``num_classes`` and ``bound`` (one value per dim), in
        the order given.
    """
    dims = np.asarray(dims)
    return [dict(num_classes=int(m), bound=welch_bound(m, dims).tolist())
            for m in num_classes]


def plot_welch(dims: Sequence[int], curves: List[dict],
               models: Optional[List[dict]], out_file: str) -> None:
    """Draw the bound curves and each model's measured cosines beside them.

    Args:
        dims (Sequence[int]): The curves' x values.
        curves (list[dict]): :func:`bound_curves`.
        models (list[dict], optional): :func:`measure_model`'s results,
            each with a ``label``, one colour each. At each width (a circle
            for the inference codes, a square for the training branches)
            the mean over the draws of the largest cross-class |cosine|
            (Eq. 8's mu; filled, with a min-max bar) and of the
            root-mean-square one (hollow): the bound holds for both.
        out_file (str): The PNG (640 x 480), written atomically.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    for curve in curves:
        ax.plot(dims, curve['bound'], linewidth=1.5,
                label=f'Welch bound, M = {curve["num_classes"]}')
    for model, color in zip(models or [], _MODEL_COLORS * len(models or [])):
        for width in model['widths']:
            marker = 's' if width['name'] == 'training' else 'o'
            name = f'{model["label"]}, {width["name"]} d = {width["dims"]}'
            for stat, fill in (('max_cosine', color), ('rms_cosine', 'none')):
                value = width[stat]
                ax.errorbar(
                    width['dims'], value['mean'],
                    yerr=[[value['mean'] - value['min']],
                          [value['max'] - value['mean']]],
                    fmt=marker, color=color, markerfacecolor=fill,
                    markersize=7, capsize=3,
                    label=f'{name}: {"max" if fill != "none" else "rms"}')
    ax.set(xlabel='code dimension d', ylabel='cross-class |cosine|',
           title='Welch bound and measured cross-class cosine',
           ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc='upper right')
    fig.tight_layout()
    save_figure(fig, out_file)
