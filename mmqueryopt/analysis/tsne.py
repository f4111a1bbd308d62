"""t-SNE of a model's relaxed codes, coloured by class (QueryOpt Figure 13).

The points are the relaxed bits of branch 0 (the k values in (-1, 1) whose
signs are the codes, :func:`mmqueryopt.retrieval.encoder.relaxed_bits`) of
a split's images, chosen as MMPretrain's ``tools/visualization/
vis_tsne.py`` chooses them: the first ``max_num_class`` classes (or those
named), at most ``max_num_samples`` images of each, in dataset order; then
scikit-learn's :class:`~sklearn.manifold.TSNE` with a fixed
``random_state``, so that a seed gives the same points on every run.
Several models (e.g. trained with and without the auxiliary branch) are
drawn side by side.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from .figures import DPI, pyplot, save_figure


def select_samples(labels: Sequence[int],
                   class_idx: Optional[Sequence[int]] = None,
                   max_num_class: int = 20,
                   max_num_samples: int = 100) -> List[int]:
    """The images to embed, as MMPretrain's ``vis_tsne.py`` picks them.

    Args:
        labels (Sequence[int]): Class id of each image, in dataset order.
        class_idx (Sequence[int], optional): The classes to use; default
            the first ``max_num_class`` class ids (0, 1, ...).
        max_num_class (int): Used when ``class_idx`` is None.
        max_num_samples (int): At most this many images per class, the
            first ones in dataset order.

    Returns:
        list[int]: Dataset indices, in dataset order.
    """
    classes = (set(range(max_num_class)) if class_idx is None else
               set(int(c) for c in class_idx))
    counts: Dict[int, int] = {}
    chosen = []
    for index, label in enumerate(labels):
        label = int(label)
        if label in classes and counts.get(label, 0) < max_num_samples:
            chosen.append(index)
            counts[label] = counts.get(label, 0) + 1
    return chosen


def check_perplexity(perplexity: float, num_points: int,
                     source: str) -> None:
    """scikit-learn needs fewer neighbours than points: refuse early.

    Args:
        perplexity (float): ``--perplexity``.
        num_points (int): Points to embed.
        source (str): Where the points come from, for the message.

    Raises:
        ValueError: One line naming ``--perplexity`` and the count.
    """
    if not perplexity < num_points:
        raise ValueError(
            f'--perplexity {perplexity:g} needs more than {perplexity:g} '
            f'points, but {source} gives {num_points}: lower --perplexity '
            f'or raise --max-num-samples / --max-num-class')


def embed(features: np.ndarray, perplexity: float = 30.0,
          early_exaggeration: float = 12.0, learning_rate='auto',
          max_iter: int = 1000, n_iter_without_progress: int = 300,
          init: str = 'pca', seed: int = 0) -> np.ndarray:
    """Two-dimensional t-SNE of ``features``.

    Args:
        features (np.ndarray): (N, D).
        perplexity, early_exaggeration, learning_rate, max_iter,
            n_iter_without_progress, init: scikit-learn's ``TSNE``
            arguments.
        seed (int): ``random_state``; the same seed gives the same points.

    Returns:
        np.ndarray: (N, 2) float64.
    """
    from sklearn.manifold import TSNE
    model = TSNE(n_components=2, perplexity=perplexity,
                 early_exaggeration=early_exaggeration,
                 learning_rate=learning_rate, max_iter=max_iter,
                 n_iter_without_progress=n_iter_without_progress,
                 init=init, random_state=seed)
    return model.fit_transform(np.asarray(features, dtype=np.float64))


def plot_panels(panels: Sequence[dict], out_file: str,
                class_names: Optional[Sequence[str]] = None,
                legend: bool = False, panel_size: float = 5.0) -> None:
    """The panels side by side, each point coloured by its class (the same
    colour for a class in every panel). Written atomically.

    Args:
        panels (Sequence[dict]): Each with ``name``, ``points`` ((N, 2))
            and ``labels`` ((N,) class ids).
        out_file (str): The PNG.
        class_names (Sequence[str], optional): Legend entries by class id.
        legend (bool): Draw a legend of the classes.
        panel_size (float): Inches per panel side.
    """
    plt = pyplot()
    classes = sorted({int(c) for p in panels for c in p['labels']})
    cmap = plt.get_cmap('tab20' if len(classes) > 10 else 'tab10')
    colour = {c: cmap(i % cmap.N) for i, c in enumerate(classes)}
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(panel_size * len(panels), panel_size),
                             dpi=DPI)
    try:
        for ax, panel in zip(axes[0], panels):
            points = np.asarray(panel['points'])
            labels = np.asarray(panel['labels'])
            for c in classes:
                mask = labels == c
                name = (str(class_names[c]) if class_names is not None
                        and 0 <= c < len(class_names) else str(c))
                ax.scatter(points[mask, 0], points[mask, 1], s=8,
                           color=colour[c], label=name)
            ax.set_title(panel['name'], fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        if legend:
            axes[0][-1].legend(fontsize=7, markerscale=2, loc='center left',
                               bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    save_figure(fig, out_file)
