"""A search result as a PNG grid: the query, then its nearest images.

Each cell is a square thumbnail (aspect kept, centred) under a one-line
title: ``query`` for the query, the Hamming distance for a result. Borders
are green (same label as the query) or red (another label) when both labels
are known, grey otherwise. The figure is laid out in pixels, so a grid of
``n`` cells is exactly ``grid_size(n, ...)`` pixels.
"""
import io
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from mmqueryopt.fileio import atomic_write

# Pixels above each thumbnail for its title, and around it for the border.
TITLE_PX = 20
PAD_PX = 6
DPI = 100
RIGHT, WRONG, NEUTRAL = '#2ca02c', '#d62728', '#7f7f7f'


def grid_size(num_cells: int, thumb_size: int = 128,
              ncols: int = 6) -> Tuple[int, int]:
    """``(width, height)`` in pixels of a grid of ``num_cells`` cells.

    Args:
        num_cells (int): The query plus its results.
        thumb_size (int): Thumbnail side in pixels.
        ncols (int): Cells per row (fewer when there are fewer cells).

    Returns:
        tuple[int, int]: The PNG's size.
    """
    cols = min(ncols, num_cells)
    rows = math.ceil(num_cells / cols)
    return (cols * (thumb_size + 2 * PAD_PX),
            rows * (thumb_size + 2 * PAD_PX + TITLE_PX))


def thumbnail(path: str, thumb_size: int) -> np.ndarray:
    """The image as an RGB square of ``thumb_size``, letterboxed in white."""
    from PIL import Image, ImageOps
    with Image.open(path) as img:
        # contain() also enlarges: small images (e.g. 16x16 digits) would
        # otherwise be specks in their cells.
        img = ImageOps.contain(img.convert('RGB'), (thumb_size, thumb_size))
        canvas = Image.new('RGB', (thumb_size, thumb_size), 'white')
        canvas.paste(img, ((thumb_size - img.width) // 2,
                           (thumb_size - img.height) // 2))
    return np.asarray(canvas)


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed, and no GUI
    backend chosen by the environment)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def grid_figure(num_cells: int, thumb_size: int = 128,
                ncols: int = 6) -> Tuple[object, list]:
    """A figure of ``num_cells`` cells and their axes, row by row.

    Args:
        num_cells (int): Cells to lay out.
        thumb_size (int): Cell image side in pixels. Defaults to 128.
        ncols (int): Cells per row. Defaults to 6.

    Returns:
        tuple: ``(fig, axes)``: the matplotlib figure, ``grid_size(...)``
        pixels at :data:`DPI`, and a list of ``num_cells`` axes without
        ticks, each ``thumb_size`` pixels square with room for a title.
    """
    plt = pyplot()
    width, height = grid_size(num_cells, thumb_size, ncols)
    cols = min(ncols, num_cells)
    cell_w = thumb_size + 2 * PAD_PX
    cell_h = cell_w + TITLE_PX
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    axes = []
    for n in range(num_cells):
        row, col = divmod(n, cols)
        # Axes in figure fractions, from the bottom-left corner.
        left = (col * cell_w + PAD_PX) / width
        bottom = (height - (row + 1) * cell_h + PAD_PX) / height
        ax = fig.add_axes(
            [left, bottom, thumb_size / width, thumb_size / height])
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    return fig, axes


def save_figure(fig, out_file: str) -> None:
    """Save ``fig`` as a PNG of exactly its pixel size, then close it.

    The file is whole or absent: rendered in memory, then written
    atomically, so an interrupted tool leaves no half-written picture.
    """
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=DPI, format='png')
    finally:
        pyplot().close(fig)
    atomic_write(out_file, buffer.getvalue())


def save_grid(out_file: str,
              query_path: str,
              result_paths: Sequence[str],
              distances: Sequence[int],
              query_label: Optional[int] = None,
              result_labels: Optional[Sequence[int]] = None,
              thumb_size: int = 128,
              ncols: int = 6) -> None:
    """Draw one query's results and save them as a PNG.

    Args:
        out_file (str): The ``.png`` to write.
        query_path (str): The query image.
        result_paths (Sequence[str]): Its nearest images, nearest first.
        distances (Sequence[int]): Their Hamming distances.
        query_label (int, optional): The query's class id, if known.
        result_labels (Sequence[int], optional): The results' class ids.
        thumb_size (int): Thumbnail side in pixels. Defaults to 128.
        ncols (int): Cells per row. Defaults to 6.
    """
    cells = [(query_path, 'query', NEUTRAL)]
    for i, (path, dist) in enumerate(zip(result_paths, distances)):
        color = NEUTRAL
        if query_label is not None and result_labels is not None:
            color = RIGHT if result_labels[i] == query_label else WRONG
        cells.append((path, f'd={int(dist)}', color))
    fig, axes = grid_figure(len(cells), thumb_size, ncols)
    try:
        for ax, (path, title, color) in zip(axes, cells):
            ax.imshow(thumbnail(path, thumb_size))
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(4 if color != NEUTRAL else 1)
            ax.set_title(title, fontsize=9, pad=3)
    except BaseException:
        pyplot().close(fig)
        raise
    save_figure(fig, out_file)
