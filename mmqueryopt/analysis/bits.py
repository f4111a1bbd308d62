"""What a bit encodes: the images that set it most strongly either way and
the classes that go with each value."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmqueryopt.evaluation.functional.codes import sign as code_sign
from mmqueryopt.retrieval.encoder import encode
from .figures import grid_figure, save_figure, thumbnail


def relaxed_codes(model, dataloader) -> Tuple[np.ndarray, List[str],
                                              Optional[np.ndarray]]:
    """The relaxed bits (branch 0, in (-1, 1)) of every image of a loader:
    :func:`mmqueryopt.retrieval.encoder.encode` with ``relaxed=True``.

    Returns:
        tuple: ``(relaxed, paths, labels)``: (N, k) float32 in dataset
        order, the image paths, and (N,) class ids or None when some image
        has no single label.
    """
    return encode(model, dataloader, progress=False, relaxed=True)


def strongest(values: np.ndarray, sign: int, num: int) -> np.ndarray:
    """Indices of the items that set a bit most strongly to ``sign``.

    Args:
        values (np.ndarray): (N,) relaxed values of one bit.
        sign (int): +1 or -1.
        num (int): At most this many.

    Returns:
        np.ndarray: Indices, strongest first, ties in item order; only
        items whose binary value is ``sign`` (ties at 0 go to +1).
    """
    order = np.argsort(-sign * values, kind='stable')
    return order[code_sign(values)[order] == sign][:num]


def class_association(bits: np.ndarray, labels: np.ndarray,
                      num: int) -> Dict[str, List[Tuple[int, float]]]:
    """The classes most often at each value of one bit.

    Args:
        bits (np.ndarray): (N,) binary values in {-1, +1}.
        labels (np.ndarray): (N,) class ids.
        num (int): Classes per value.

    Returns:
        dict: ``{'+1': [(class, fraction), ...], '-1': [...]}``: the
        fraction of a class's images at that value, highest first, ties
        by class id.
    """
    classes = np.unique(labels)
    plus = np.array([(bits[labels == c] > 0).mean() for c in classes])
    result = {}
    for key, fraction in (('+1', plus), ('-1', 1 - plus)):
        order = np.argsort(-fraction, kind='stable')[:num]
        result[key] = [(int(classes[i]), float(fraction[i])) for i in order]
    return result


def save_bit_grid(out_file: str,
                  paths: Sequence[str],
                  plus: Sequence[int],
                  minus: Sequence[int],
                  values: np.ndarray,
                  names: Sequence[str],
                  num: int,
                  thumb_size: int = 96) -> None:
    """One bit's strongest images: +1 on the first row, -1 on the second.

    Args:
        out_file (str): The PNG, ``grid_size(2 * num, thumb_size, num)``
            pixels (a short row leaves empty cells).
        paths (Sequence[str]): Every item's image.
        plus, minus (Sequence[int]): Items of each row, strongest first.
        values (np.ndarray): (N,) the bit's relaxed values.
        names (Sequence[str]): Every item's class name ('' if unknown).
        num (int): Cells per row.
        thumb_size (int): Cell side in pixels. Defaults to 96.
    """
    fig, axes = grid_figure(2 * num, thumb_size, num)
    for row, items in enumerate((plus, minus)):
        for col in range(num):
            ax = axes[row * num + col]
            if col >= len(items):
                ax.axis('off')
                continue
            i = items[col]
            ax.imshow(thumbnail(paths[i], thumb_size))
            ax.set_title(f'{values[i]:+.2f} {names[i]}'[:18], fontsize=8,
                         pad=3)
    save_figure(fig, out_file)
