"""What a backbone's maps look like, without computing them."""
import itertools
from typing import List, Tuple

import torch
from torch import nn
from torch.func import functional_call


def backbone_map_shapes(backbone: nn.Module,
                        input_size: int = 224) -> List[Tuple[int, ...]]:
    """Shapes of a backbone's outputs for one square image.

    The backbone runs on the meta device (shapes only: no arithmetic, no
    memory, ~0.1 s for ResNet-50), its own weights and buffers untouched,
    BatchNorm statistics included.

    Args:
        backbone (nn.Module): An MMPretrain backbone (a tuple of maps out).
        input_size (int): Side of the image. Defaults to 224.

    Returns:
        list[tuple[int, ...]]: One shape per output, e.g. ResNet-50 with
        ``out_indices=(2, 3)``: ``[(1, 1024, 14, 14), (1, 2048, 7, 7)]``.
    """
    meta = {
        name: torch.empty_like(tensor, device='meta')
        for name, tensor in itertools.chain(backbone.named_parameters(),
                                            backbone.named_buffers())
    }
    image = torch.empty(1, 3, input_size, input_size, device='meta')
    outputs = functional_call(backbone, meta, (image, ))
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs, )
    return [tuple(output.shape) for output in outputs]
