"""Health of a set of binary codes: balance, correlation, distances.

The codes come from any codes file, read by
:func:`mmqueryopt.retrieval.read_codes_file` (``Codes.signs()``,
``labels``, ``relaxed``), whichever tool wrote it.
"""
import json
from typing import Optional

import numpy as np

from mmqueryopt.evaluation.functional.codes import sign
from .figures import DPI, pyplot, save_figure

# Images whose pairs the distance histograms count; larger sets are
# subsampled (the pairs grow quadratically).
MAX_PAIR_ITEMS = 4000
FIGSIZE = (6.4, 4.8)  # inches: every plot is 640 x 480 pixels


def _same_label(labels: np.ndarray) -> np.ndarray:
    """(N, N) bool: the items share a label (class ids or multi-hot)."""
    if labels.ndim == 1:
        return labels[:, None] == labels[None, :]
    hot = labels.astype(np.int64)
    return hot @ hot.T > 0


def code_statistics(codes: np.ndarray,
                    labels: Optional[np.ndarray] = None,
                    relaxed: Optional[np.ndarray] = None,
                    max_pair_items: int = MAX_PAIR_ITEMS,
                    seed: int = 0) -> dict:
    """Statistics of (N, k) codes in {-1, +1}.

    Args:
        codes (np.ndarray): (N, k) in {-1, +1}.
        labels (np.ndarray, optional): (N,) class ids or (N, C) multi-hot.
        relaxed (np.ndarray, optional): (N, k) the relaxed codes whose
            signs are ``codes``.
        max_pair_items (int): Past this many items the distance
            histograms count the pairs of a random subset of this size.
        seed (int): Seed of that subset.

    Returns:
        dict: ``num_items``, ``nbits``; ``balance`` (fraction of +1 per
        bit) and ``max_imbalance`` (largest ``|fraction - 0.5|``);
        ``correlation`` (k x k Pearson correlations between bits over the
        items, None where a bit is constant) with ``mean_abs_correlation``
        and ``max_abs_correlation`` over the pairs of distinct bits;
        ``distinct_codes`` and ``distinct_fraction``; with labels,
        ``hamming`` (``intra`` / ``inter`` pair counts at each distance
        0..k, their means, ``pairs_from`` items); with relaxed codes,
        ``quantization_error``, the mean over items and bits of
        ``(sign(u) - u)^2``.
    """
    codes = np.asarray(codes)
    num, nbits = codes.shape
    plus = (codes > 0).mean(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        corr = np.corrcoef(codes.T.astype(np.float64)).reshape(nbits, nbits)
    off = corr[~np.eye(nbits, dtype=bool)]
    off = np.abs(off[np.isfinite(off)])
    stats = dict(
        num_items=int(num),
        nbits=int(nbits),
        balance=plus.tolist(),
        max_imbalance=float(np.abs(plus - 0.5).max()),
        correlation=[[None if not np.isfinite(v) else float(v) for v in row]
                     for row in corr],
        mean_abs_correlation=float(off.mean()) if off.size else None,
        max_abs_correlation=float(off.max()) if off.size else None,
        distinct_codes=int(len(np.unique(codes, axis=0))),
    )
    stats['distinct_fraction'] = stats['distinct_codes'] / num
    if labels is not None:
        stats['hamming'] = hamming_histograms(codes, np.asarray(labels),
                                              max_pair_items, seed)
    if relaxed is not None:
        relaxed = np.asarray(relaxed, np.float64)
        stats['quantization_error'] = float(
            ((sign(relaxed) - relaxed)**2).mean())
    return stats


def hamming_histograms(codes: np.ndarray, labels: np.ndarray,
                       max_items: int, seed: int) -> dict:
    """Pair counts at each Hamming distance, same-label vs other pairs."""
    num, nbits = codes.shape
    if num > max_items:
        keep = np.sort(np.random.default_rng(seed).choice(
            num, max_items, replace=False))
        codes, labels = codes[keep], labels[keep]
    signs = codes.astype(np.int32)
    dist = (nbits - signs @ signs.T) // 2
    upper = np.triu(np.ones(dist.shape, dtype=bool), k=1)
    same = _same_label(labels)
    result = dict(pairs_from=int(len(codes)))
    for name, mask in (('intra', upper & same), ('inter', upper & ~same)):
        counts = np.bincount(dist[mask], minlength=nbits + 1)
        result[name] = counts.tolist()
        result[f'{name}_mean'] = (float((counts * np.arange(nbits + 1)).sum()
                                        / counts.sum())
                                  if counts.sum() else None)
    return result


def plot_code_statistics(stats: dict, out_dir: str, title: str = '') -> list:
    """``balance.png``, ``correlation.png`` and, with labels,
    ``hamming.png`` (640 x 480 each) in ``out_dir``; returns their paths."""
    import os
    import os.path as osp
    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    nbits = stats['nbits']
    written = []

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.bar(np.arange(nbits), stats['balance'], color='#4c72b0')
    ax.axhline(0.5, color='k', linestyle='--', linewidth=1)
    ax.set(xlabel='bit', ylabel='fraction of +1', ylim=(0, 1),
           title=f'{title} bit balance'.strip())
    ax.set_xticks(np.arange(nbits))
    written.append(osp.join(out_dir, 'balance.png'))
    save_figure(fig, written[-1])

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    corr = np.array([[np.nan if v is None else v for v in row]
                     for row in stats['correlation']])
    image = ax.imshow(corr, cmap='RdBu_r', vmin=-1, vmax=1)
    fig.colorbar(image, ax=ax)
    ax.set(xlabel='bit', ylabel='bit',
           title=f'{title} bit correlation'.strip())
    written.append(osp.join(out_dir, 'correlation.png'))
    save_figure(fig, written[-1])

    if 'hamming' in stats:
        fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
        distances = np.arange(nbits + 1)
        for name, label in (('intra', 'same class'), ('inter', 'other')):
            counts = np.asarray(stats['hamming'][name], np.float64)
            if counts.sum():
                ax.bar(distances, counts / counts.sum(), alpha=0.6,
                       label=f'{label} ({int(counts.sum()):,} pairs)')
        ax.set(xlabel='Hamming distance', ylabel='fraction of pairs',
               title=f'{title} pair distances'.strip())
        ax.legend()
        written.append(osp.join(out_dir, 'hamming.png'))
        save_figure(fig, written[-1])
    return written


def dumps(stats: dict) -> str:
    """JSON text of the statistics (NaN-free: undefined values are null)."""
    return json.dumps(stats, indent=1)
