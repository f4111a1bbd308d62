"""A2-Net's hash head: a tied-weight linear encoder/decoder, tanh codes,
and (A2-Net++, reconstructed from code) images decoded from the features."""
import math
from typing import Dict, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmqueryopt.registry import MODELS
from .base_hash_head import BaseHashHead

# Sources of the image generators: the holistic feature x, or its
# reconstruction W^T tanh(W x).
IMAGE_SOURCES = ('holistic', 'reconstructed')


class ImageGenerator(nn.Module):
    """DCGAN-style decoder from a feature vector to a 224x224 image.

    ``latent_proj`` (Linear, d -> 512) feeds a 1x1 map to a transposed conv
    of kernel 7 (-> 7x7), then five of kernel 4, stride 2 (-> 224x224), each
    without bias, with BN and ReLU; the last with BN(3) and a sigmoid. This
    is the A2-Net++ image path as found in the code (see docs/a2net.md).

    Args:
        in_channels (int): Feature width d.
        latent_channels (int): Width after ``latent_proj``. Defaults to 512.
        widths (Sequence[int]): Channels after each transposed conv.

    Returns (forward):
        Tensor: (B, 3, 224, 224) in (0, 1).
    """

    def __init__(self, in_channels: int, latent_channels: int = 512,
                 widths: Sequence[int] = (256, 128, 64, 32, 16, 3)):
        super().__init__()
        self.latent_proj = nn.Linear(in_channels, latent_channels)
        layers = []
        for index, (inp, out) in enumerate(
                zip((latent_channels, *widths[:-1]), widths)):
            last = index == len(widths) - 1
            conv = (nn.ConvTranspose2d(inp, out, 7, 1, 0, bias=False)
                    if index == 0 else
                    nn.ConvTranspose2d(inp, out, 4, 2, 1, bias=False))
            layers.append(nn.Sequential(
                conv, nn.BatchNorm2d(out),
                nn.Sigmoid() if last else nn.ReLU(inplace=True)))
        self.upsampling = nn.Sequential(*layers)

    def forward(self, feats: Tensor) -> Tensor:
        return self.upsampling(self.latent_proj(feats)[:, :, None, None])


@MODELS.register_module()
class TiedAutoencoderHashHead(BaseHashHead):
    """Codes ``tanh(W x)`` and the reconstruction ``W^T tanh(W x)``.

    One bare parameter W (k, d) is the encoder and, transposed, the decoder
    (A2-Net's "decoder realised by W^T"); it starts Kaiming-uniform with
    a = sqrt(5), i.e. U(-1/sqrt(d), 1/sqrt(d)), as in the reference code.

    In training the head returns a dict for :class:`A2NetLoss`:
    ``relaxed_codes`` (B, k), ``code_logits`` W x (B, k),
    ``holistic_feats`` x (B, d),
    ``reconstructed_feats`` W^T tanh(W x) (B, d), and, for each source in
    ``image_sources``, ``generated_images_<source>`` (B, 3, 224, 224). In
    eval mode only the codes.

    Args:
        code_length (int): Bits k.
        in_channels (int): Feature width d, (M + 1) * 2048 for A2-Net.
        image_sources (Sequence[str]): A2-Net++'s image path (reconstructed
            from code): ``'holistic'`` decodes x, ``'reconstructed'``
            decodes W^T tanh(Wx). Defaults to () (A2-Net).
        init_cfg (dict, optional): MMEngine init config.
    """

    # One row per bit: the retriever reads a checkpoint's code length here.
    code_length_param = 'tied_weight'

    def __init__(self,
                 code_length: int,
                 in_channels: int,
                 image_sources: Sequence[str] = (),
                 init_cfg=None):
        # No auxiliary branches: ADSH's B is k wide.
        super().__init__(code_length, init_cfg=init_cfg)
        unknown = sorted(set(image_sources) - set(IMAGE_SOURCES))
        if unknown or len(set(image_sources)) != len(image_sources):
            raise ValueError(
                f'model.head.image_sources must be distinct names from '
                f'{IMAGE_SOURCES}, got {tuple(image_sources)}')
        self.in_channels = in_channels
        self.image_sources = tuple(image_sources)
        self.tied_weight = nn.Parameter(torch.empty(code_length, in_channels))
        self.image_generators = nn.ModuleDict({
            source: ImageGenerator(in_channels)
            for source in self.image_sources
        })
        self.reset_tied_weight()

    def reset_tied_weight(self) -> None:
        nn.init.kaiming_uniform_(self.tied_weight, a=math.sqrt(5))

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            self.reset_tied_weight()

    def forward(self, feats: Tensor) -> Union[Tensor, Dict[str, Tensor]]:
        """Relaxed codes, plus the loss's inputs in training.

        Args:
            feats (Tensor): (B, d) holistic features.

        Returns:
            Tensor | dict[str, Tensor]: (B, k) codes in eval mode; in
            training the dict described in the class docstring.
        """
        if feats.dim() != 2 or feats.size(1) != self.in_channels:
            raise ValueError(
                f'TiedAutoencoderHashHead expects (B, {self.in_channels}) '
                f'features (model.head.in_channels = (num_attentions + 1) * '
                f'the refiner width), got {tuple(feats.shape)}')
        logits = F.linear(feats, self.tied_weight)
        codes = torch.tanh(logits)
        if not self.training:
            return codes
        reconstructed = codes @ self.tied_weight
        outputs = dict(relaxed_codes=codes, code_logits=logits,
                       holistic_feats=feats,
                       reconstructed_feats=reconstructed)
        sources = dict(holistic=feats, reconstructed=reconstructed)
        for source, generator in self.image_generators.items():
            outputs[f'generated_images_{source}'] = generator(sources[source])
        return outputs
