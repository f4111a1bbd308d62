"""Attention maps over the image a model saw, drawn as heatmap overlays."""
from typing import List, Optional, Sequence

import numpy as np

from .figures import grid_figure, save_figure


def model_input_image(packed_inputs, to_rgb: bool) -> np.ndarray:
    """The image as the model saw it (after the test transforms), in RGB.

    Args:
        packed_inputs (torch.Tensor): (3, H, W) uint8, ``PackInputs``'s
            ``inputs`` (BGR when the data preprocessor converts to RGB).
        to_rgb (bool): The data preprocessor's ``to_rgb``.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    image = packed_inputs.detach().cpu().numpy().transpose(1, 2, 0)
    if to_rgb:
        image = image[..., ::-1]
    return np.ascontiguousarray(image).astype(np.uint8)


def map_titles(num_maps: int, code_length: int,
               map_ids: Sequence[int],
               relaxed: Optional[Sequence[float]] = None) -> List[str]:
    """Titles of the chosen maps: the bit and its value when there is one
    map per bit, else the map's number (e.g. AGMH's descriptors).

    Args:
        num_maps (int): M, the maps the model gives.
        code_length (int): Bits k of the code.
        map_ids (Sequence[int]): The maps drawn.
        relaxed (Sequence[float], optional): The image's k relaxed bits.

    Returns:
        list[str]: One title per drawn map, e.g. ``'bit 3 = +1 (0.87)'``.
    """
    if num_maps != code_length or relaxed is None:
        return [f'map {j}' for j in map_ids]
    return [
        f'bit {j} = {"+1" if relaxed[j] > 0 else "-1"} ({relaxed[j]:+.2f})'
        for j in map_ids
    ]


def save_attention_overlay(out_file: str,
                           image: np.ndarray,
                           maps: np.ndarray,
                           titles: Sequence[str],
                           thumb_size: int = 128,
                           ncols: int = 6,
                           alpha: float = 0.5,
                           interpolation: str = 'bilinear') -> None:
    """Draw the image, then each map as a heatmap over it, in one PNG.

    A map of h x w cells is stretched over the whole image (``extent``):
    cell (r, c) covers rows ``r * H / h .. (r + 1) * H / h`` and the like
    for columns, the area a token at that grid position sums up in a
    backbone of stride H / h. Each map is scaled from 0 to its own maximum.

    Args:
        out_file (str): The PNG, ``grid_size(1 + M, thumb_size, ncols)``
            pixels.
        image (np.ndarray): (H, W, 3) uint8 RGB, as the model saw it.
        maps (np.ndarray): (M, h, w) non-negative maps.
        titles (Sequence[str]): One title per map.
        thumb_size (int): Cell side in pixels. Defaults to 128.
        ncols (int): Cells per row. Defaults to 6.
        alpha (float): Opacity of the heatmaps. Defaults to 0.5.
        interpolation (str): matplotlib's, for the heatmaps: ``'nearest'``
            shows the token cells. Defaults to ``'bilinear'``.
    """
    if len(titles) != len(maps):
        raise ValueError(f'{len(maps)} maps but {len(titles)} titles')
    height, width = image.shape[:2]
    extent = (0, width, height, 0)
    fig, axes = grid_figure(1 + len(maps), thumb_size, ncols)
    axes[0].imshow(image, extent=extent)
    axes[0].set_title('image', fontsize=9, pad=3)
    for ax, attention, title in zip(axes[1:], maps, titles):
        ax.imshow(image, extent=extent)
        ax.imshow(attention, cmap='jet', alpha=alpha, extent=extent,
                  interpolation=interpolation, vmin=0,
                  vmax=max(float(attention.max()), 1e-12))
        ax.set_title(title, fontsize=8, pad=3)
    save_figure(fig, out_file)
