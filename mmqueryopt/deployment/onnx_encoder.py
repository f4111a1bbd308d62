"""The module that ONNX export traces: preprocessing, encoder, codes.

A deployed model takes what an image library gives, float32 RGB pixels in
0-255, so the config's data preprocessor (channel order, mean and std,
padding) moves inside the graph. The codes use the one sign rule of the
package (:func:`mmqueryopt.evaluation.functional.codes.sign`: +1 where the
relaxed value is >= 0) written as ``where(h >= 0, 1, -1)``: ONNX's ``Sign``
maps 0 to 0 and would give ternary codes.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OnnxEncoder(nn.Module):
    """Images in, binary and relaxed codes out: what ``tools/encode.py``
    computes for an image, as one traceable module.

    It reproduces MMPretrain's ``ClsDataPreprocessor`` on a batch that its
    dataloader would give as uint8 BGR (``LoadImageBGR``): with ``to_rgb``
    the preprocessor flips BGR to RGB, so RGB input is used as it is;
    without, the model was fed BGR and the input is flipped. Then
    ``(x - mean) / std`` (the same operations, so the same float32 values)
    and the preprocessor's padding to ``pad_size_divisor``.

    Args:
        model (nn.Module): A ``HashRetriever`` (``extract_feat``,
            ``code_length``, ``data_preprocessor``); put in eval mode here.

    Raises:
        TypeError: The model's data preprocessor is not MMPretrain's
            ``ClsDataPreprocessor`` (or a subclass), whose settings this
            module reads.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from mmpretrain.models.utils import ClsDataPreprocessor
        preprocessor = model.data_preprocessor
        if not isinstance(preprocessor, ClsDataPreprocessor):
            raise TypeError(
                f'ONNX export reads the settings of MMPretrain\'s '
                f'ClsDataPreprocessor; model.data_preprocessor is '
                f'{type(preprocessor).__name__}')
        self.model = model.eval()
        self.code_length = int(model.code_length)
        self.flip_to_bgr = not preprocessor.to_rgb
        self.normalize = preprocessor._enable_normalize
        if self.normalize:
            # Copies, (1, 3, 1, 1): constants of the graph.
            self.register_buffer('mean', preprocessor.mean.detach().clone()
                                 .float()[None], persistent=False)
            self.register_buffer('std', preprocessor.std.detach().clone()
                                 .float()[None], persistent=False)
        self.pad_size_divisor = int(preprocessor.pad_size_divisor)
        self.pad_value = float(preprocessor.pad_value)
        self.eval()

    def train(self, mode: bool = True) -> 'OnnxEncoder':
        """Stay in eval mode: the encoder is inference only, and an
        exporter restores the mode it found after tracing, which for a
        module in train mode would put the user's model (BatchNorm, the
        heads' training outputs) in train mode too."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """What the data preprocessor makes of the images.

        Args:
            images (Tensor): (N, 3, H, W) float32 RGB in 0-255.

        Returns:
            Tensor: (N, 3, H', W') normalised, H' and W' padded up to
            multiples of ``pad_size_divisor``.
        """
        if self.flip_to_bgr:
            images = images.flip(1)
        if self.normalize:
            images = (images - self.mean) / self.std
        if self.pad_size_divisor > 1:
            height, width = images.shape[-2:]
            divisor = self.pad_size_divisor
            images = F.pad(images,
                           (0, math.ceil(width / divisor) * divisor - width,
                            0, math.ceil(height / divisor) * divisor - height),
                           'constant', self.pad_value)
        return images

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Codes of a batch of images.

        Args:
            images (Tensor): (N, 3, H, W) float32 RGB in 0-255.

        Returns:
            tuple[Tensor, Tensor]: ``codes``, (N, k) int8 in {-1, +1}
            (+1 where the relaxed value is >= 0, as ``tools/encode.py``),
            and ``relaxed``, (N, k) float32, the relaxed codes (branch 0).
        """
        relaxed = self.model.extract_feat(
            self.preprocess(images))[:, :self.code_length].float()
        codes = torch.where(relaxed >= 0, 1, -1).to(torch.int8)
        return codes, relaxed
