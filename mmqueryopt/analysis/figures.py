"""Figures of image cells laid out as the search result grids are.

The cells of :func:`mmqueryopt.retrieval.save_grid`: square thumbnails under
a one-line title, in rows of ``ncols``, so that a figure of ``n`` cells is
exactly :func:`mmqueryopt.retrieval.grid_size` pixels. The tools of this
package draw attention overlays and per-bit image sets in them.
"""
import numpy as np

# The layout and its public helpers live with the search grids, which the
# figures must match; re-exported for this package's figure modules.
from mmqueryopt.retrieval.grid import (DPI, grid_figure, pyplot,  # noqa: F401
                                       save_figure, thumbnail)


def figure_to_array(fig) -> np.ndarray:
    """The figure rendered as an (H, W, 3) uint8 RGB array; closes it."""
    try:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        pyplot().close(fig)
