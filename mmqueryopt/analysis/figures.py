"""Figures of image cells laid out as the search result grids are.

The cells of :func:`mmqueryopt.retrieval.save_grid`: square thumbnails under
a one-line title, in rows of ``ncols``, so that a figure of ``n`` cells is
exactly :func:`mmqueryopt.retrieval.grid_size` pixels. The tools of this
package draw attention overlays and per-bit image sets in them.
"""
from typing import Iterator, Tuple

import numpy as np

from mmqueryopt.retrieval.grid import PAD_PX, TITLE_PX, grid_size

DPI = 100


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def grid_figure(num_cells: int, thumb_size: int = 128,
                ncols: int = 6) -> Tuple[object, Iterator]:
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
    """Save ``fig`` as a PNG of exactly its pixel size, then close it."""
    try:
        fig.savefig(out_file, dpi=DPI, format='png')
    finally:
        pyplot().close(fig)


def figure_to_array(fig) -> np.ndarray:
    """The figure rendered as an (H, W, 3) uint8 RGB array; closes it."""
    try:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        pyplot().close(fig)
