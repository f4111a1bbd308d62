"""How distinct QueryOpt's learned queries and the attribute features they
decode are (the paper's Figure 8).

Figure 8a is the pairwise cosine similarity of the k learned queries
(``head.query_embed.weight``, branch 0); Figures 8b-d that of the k
attribute-specific features one image is decoded into, for images of three
classes. An attribute feature is the decoder's output for one query after
its final LayerNorm: the vector whose L2-normalised projection becomes the
bit (:meth:`QueryHashHead.forward`). The auxiliary branches roll every
query by the same shift, which keeps the cosines within a branch those of
branch 0; the cosines across branches are new, and shown too.

Plots use matplotlib on its Agg backend, imported when first drawing.
"""
from typing import List, Optional

import numpy as np

from .figures import DPI, pyplot, save_figure


def cosine_matrix(vectors) -> np.ndarray:
    """Pairwise cosine similarity of the rows.

    Args:
        vectors (array-like): (n, d), no zero row.

    Returns:
        np.ndarray: (n, n) float64, ones on the diagonal.

    Raises:
        ValueError: A row is zero.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms == 0):
        raise ValueError(f'row {int(np.argmin(norms))} is zero: its cosine '
                         f'similarity is undefined')
    unit = vectors / norms[:, None]
    return unit @ unit.T


def off_diagonal(matrix: np.ndarray) -> dict:
    """``mean_abs`` and ``max_abs`` of a square matrix's off-diagonal
    entries (None for a 1 x 1 matrix)."""
    matrix = np.asarray(matrix)
    values = np.abs(matrix[~np.eye(len(matrix), dtype=bool)])
    if not values.size:
        return dict(mean_abs=None, max_abs=None)
    return dict(mean_abs=float(values.mean()), max_abs=float(values.max()))


def _entry(matrix: np.ndarray) -> dict:
    """A matrix as JSON lists, with its off-diagonal summary."""
    return dict(matrix=np.asarray(matrix).tolist(), **off_diagonal(matrix))


def query_similarities(head) -> dict:
    """The cosine similarity of a ``QueryHashHead``'s queries.

    Args:
        head: A :class:`~mmqueryopt.models.heads.QueryHashHead`.

    Returns:
        dict: ``queries``: the k x k matrix of branch 0 with its
        off-diagonal ``mean_abs`` and ``max_abs``; ``branch_queries``: the
        same for all k * N queries of the N branches (branch-major), None
        without auxiliary branches.
    """
    import torch
    with torch.no_grad():
        queries = head.query_embed.weight.detach().cpu().double().numpy()
        branches = head.branch_queries().detach().cpu().double().numpy()
    return dict(
        queries=_entry(cosine_matrix(queries)),
        branch_queries=(_entry(cosine_matrix(branches))
                        if head.num_branches > 1 else None))


def attribute_features(model, inputs):
    """The k attribute features of each image: the decoder's output for
    each original query (branch 0), after the decoder's final LayerNorm.

    Args:
        model: A ``HashRetriever`` with a ``QueryHashHead``, in eval mode.
        inputs (Tensor): (b, 3, H, W) preprocessed images.

    Returns:
        Tensor: (b, k, d).
    """
    return model.head.attribute_features(model.neck(model.backbone(inputs)))


def attribute_similarity(model, inputs):
    """Each image's k x k cosine similarity of its attribute features,
    flattened (a row per image, for
    :func:`~mmqueryopt.retrieval.encoder.encode_outputs`).

    Returns:
        Tensor: (b, k * k).
    """
    import torch.nn.functional as F
    unit = F.normalize(attribute_features(model, inputs).double(), dim=-1)
    return (unit @ unit.transpose(1, 2)).flatten(1)


def example_images(labels: np.ndarray, num_examples: int) -> List[int]:
    """The first image of each of the first ``num_examples`` classes (in
    class id order) present in a split."""
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    return firsts[:num_examples]


def split_attribute_similarities(model, loader, num_examples: int = 3,
                                 progress: bool = False) -> dict:
    """Attribute similarity over a split, and of a few images.

    Args:
        model: A ``HashRetriever`` with a ``QueryHashHead``, in eval mode.
        loader: A dataloader of the split (test transforms, fixed order).
        num_examples (int): Images drawn one by one (Figure 8b-d): the
            first image of each of the first classes. Defaults to 3.
        progress (bool): Show the encoding's progress bar.

    Returns:
        dict: ``num_images``; ``mean``, the mean over the split's images
        of each image's k x k matrix, with its off-diagonal ``mean_abs``
        and ``max_abs``; ``examples``: per image ``index``, ``path``,
        ``label`` and its matrix.
    """
    from mmqueryopt.retrieval.encoder import encode_outputs
    values, paths, labels = encode_outputs(model, loader,
                                           attribute_similarity, progress)
    k = model.code_length
    matrices = values.astype(np.float64).reshape(len(values), k, k)
    chosen = (example_images(labels, num_examples) if labels is not None
              else list(range(min(num_examples, len(values)))))
    return dict(
        num_images=int(len(values)),
        mean=_entry(matrices.mean(axis=0)),
        examples=[
            dict(index=i, path=paths[i],
                 label=None if labels is None else int(labels[i]),
                 **_entry(matrices[i])) for i in chosen
        ])


def _heat_map(ax, matrix, title: str):
    """One cosine matrix on a fixed -1..1 scale, integer ticks."""
    from matplotlib.ticker import MaxNLocator
    image = ax.imshow(np.asarray(matrix), cmap='RdBu_r', vmin=-1, vmax=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('bit', fontsize=8)
    ax.set_ylabel('bit', fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def plot_query_similarity(result: dict, out_file: str,
                          class_names: Optional[List[str]] = None) -> None:
    """Figure 8 in one PNG: the queries' similarity, the attribute
    similarity averaged over the split, then each example image's.

    Args:
        result (dict): ``queries`` (:func:`query_similarities`) and
            ``attributes`` (:func:`split_attribute_similarities`).
        out_file (str): The PNG, 300 x 340 pixels a panel plus 80 for the
            colour bar, written atomically.
        class_names (list[str], optional): Names of the class ids.
    """
    attributes = result['attributes']
    panels = [(result['queries']['matrix'], '(a) learned queries'),
              (attributes['mean']['matrix'],
               f'(b) attributes, {attributes["num_images"]}-image mean')]
    for n, example in enumerate(attributes['examples']):
        label = example['label']
        name = ('' if label is None else class_names[label]
                if class_names else str(label))
        panels.append((example['matrix'],
                       f'({chr(ord("c") + n)}) attributes, {name}'))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(3.0 * len(panels) + 0.8, 3.4),
                             dpi=DPI, layout='constrained')
    for ax, (matrix, title) in zip(axes[0], panels):
        image = _heat_map(ax, matrix, title)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label='cosine')
    save_figure(fig, out_file)


def plot_branch_queries(matrix, code_length: int, out_file: str) -> None:
    """The k * N queries of all branches as one heat map, the branches
    separated by lines (640 x 560 pixels, written atomically)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=DPI)
    image = _heat_map(ax, matrix, 'queries of all branches (branch-major)')
    ax.set_xlabel('branch * k + bit', fontsize=8)
    ax.set_ylabel('branch * k + bit', fontsize=8)
    for edge in np.arange(code_length, len(matrix), code_length) - 0.5:
        ax.axhline(edge, color='k', linewidth=0.6)
        ax.axvline(edge, color='k', linewidth=0.6)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    save_figure(fig, out_file)
