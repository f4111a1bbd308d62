"""Run an exported encoder with onnxruntime and hold it against PyTorch.

The PyTorch side is the path of ``tools/encode.py``
(:func:`mmqueryopt.retrieval.encoder.encode_outputs` with
:func:`~mmqueryopt.retrieval.encoder.relaxed_bits`, then the sign rule) on
the uint8 BGR images its dataloader would give, so that a check covers the
preprocessing moved into the graph as well as the network.
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from mmqueryopt.evaluation.functional.codes import sign
from mmqueryopt.retrieval.encoder import encode_outputs, relaxed_bits

#: How far onnxruntime's relaxed codes may be from PyTorch's, relative to
#: max(1, the largest |relaxed value|). Both compute in float32, with other
#: kernels and summation orders: each layer's result then differs by a few
#: units in the last place (float32's is 1.2e-7), and ResNet-50's ~50
#: layers grow that to about 1e-6 of the output's scale at worst (seen here:
#: 4e-8 on every method at random init, 64x64). 1e-4 is a hundred times
#: that and ten thousand times below a relaxed code's range: a wrong graph
#: (a missing layer, another normalisation, a fixed branch) is far outside.
RELAXED_TOLERANCE = 1e-4


def onnx_session(model: Union[str, bytes], threads: Optional[int] = None):
    """An onnxruntime CPU session.

    Args:
        model (str | bytes): An ``.onnx`` file or its serialised bytes.
        threads (int, optional): Intra-op threads; default onnxruntime's
            (one per physical core).

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(
        model, options, providers=['CPUExecutionProvider'])


def run_onnx(session, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The exported encoder's outputs.

    Args:
        session (onnxruntime.InferenceSession): From :func:`onnx_session`.
        images (np.ndarray): (N, 3, H, W) RGB in 0-255 (any real dtype;
            passed as float32).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``codes`` (N, k) int8 in {-1, +1}
        and ``relaxed`` (N, k) float32.
    """
    name = session.get_inputs()[0].name
    codes, relaxed = session.run(
        ['codes', 'relaxed'],
        {name: np.ascontiguousarray(images, dtype=np.float32)})
    return codes, relaxed


def pytorch_codes(model, images_bgr) -> Tuple[np.ndarray, np.ndarray]:
    """What ``tools/encode.py`` computes for images its loader gave.

    Args:
        model: The encoder, in eval mode.
        images_bgr (Sequence[Tensor]): (3, H, W) uint8 BGR images, as
            ``LoadImageBGR`` + ``PackInputs`` give them.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``codes`` (N, k) int8 in {-1, +1}
        and ``relaxed`` (N, k) float32.
    """
    from mmpretrain.structures import DataSample
    batch = dict(
        inputs=list(images_bgr),
        data_samples=[
            DataSample(metainfo=dict(img_path=f'image_{i}'))
            for i in range(len(images_bgr))
        ])
    relaxed, _, _ = encode_outputs(model, [batch], relaxed_bits,
                                   progress=False)
    return sign(relaxed).astype(np.int8), relaxed


@dataclass
class Agreement:
    """How onnxruntime's codes compare with PyTorch's.

    Attributes:
        num_images (int): Images compared.
        nbits (int): Code length.
        differing_bits (int): Bits that differ where PyTorch's relaxed value
            is farther from 0 than the tolerance (a wrong graph).
        near_zero_bits (int): Bits whose PyTorch relaxed value is within
            the tolerance of 0, where float rounding may flip the sign
            (counted, not held against the export).
        max_relaxed_diff (float): Largest |onnxruntime - PyTorch| relaxed.
        tolerance (float): The absolute tolerance used.
    """
    num_images: int
    nbits: int
    differing_bits: int
    near_zero_bits: int
    max_relaxed_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return (self.differing_bits == 0
                and self.max_relaxed_diff <= self.tolerance)

    def summary(self) -> str:
        """One line for a report."""
        return (f'{self.num_images} images x {self.nbits} bits: '
                f'{self.differing_bits} codes bits differ, max |relaxed '
                f'difference| {self.max_relaxed_diff:.2e} (tolerance '
                f'{self.tolerance:.1e}), {self.near_zero_bits} bits within '
                f'the tolerance of 0')


def compare(onnx_outputs: Tuple[np.ndarray, np.ndarray],
            torch_outputs: Tuple[np.ndarray, np.ndarray],
            tolerance: float = RELAXED_TOLERANCE) -> Agreement:
    """Hold onnxruntime's ``(codes, relaxed)`` against PyTorch's.

    Args:
        onnx_outputs (tuple): From :func:`run_onnx`.
        torch_outputs (tuple): From :func:`pytorch_codes`.
        tolerance (float): Relative to max(1, max |PyTorch relaxed|).

    Returns:
        Agreement: The comparison.
    """
    onnx_codes, onnx_relaxed = onnx_outputs
    torch_codes, torch_relaxed = torch_outputs
    if onnx_relaxed.shape != torch_relaxed.shape:
        raise ValueError(f'onnxruntime gave {onnx_relaxed.shape} relaxed '
                         f'codes, PyTorch {torch_relaxed.shape}')
    scale = max(1.0, float(np.abs(torch_relaxed).max(initial=0.0)))
    atol = tolerance * scale
    near_zero = np.abs(torch_relaxed) <= atol
    differ = (onnx_codes != torch_codes) & ~near_zero
    diff = np.abs(onnx_relaxed.astype(np.float64) - torch_relaxed)
    return Agreement(
        num_images=int(torch_relaxed.shape[0]),
        nbits=int(torch_relaxed.shape[1]),
        differing_bits=int(differ.sum()),
        near_zero_bits=int(near_zero.sum()),
        max_relaxed_diff=float(diff.max(initial=0.0)),
        tolerance=atol)


def check_against_pytorch(session, model, images_bgr) -> Agreement:
    """Encode the same images with onnxruntime and PyTorch.

    Args:
        session (onnxruntime.InferenceSession): The exported encoder.
        model: The PyTorch encoder (a ``HashRetriever``), in eval mode.
        images_bgr (Sequence[Tensor] | np.ndarray): (3, H, W) uint8 BGR
            images as the config's test pipeline gives them (a
            (N, 3, H, W) array: one per row); onnxruntime gets them as RGB.

    Returns:
        Agreement: The comparison.
    """
    import torch
    images_bgr = [torch.as_tensor(image) for image in images_bgr]
    rgb = torch.stack(images_bgr).flip(1).numpy()
    return compare(run_onnx(session, rgb), pytorch_codes(model, images_bgr))


def random_bgr(num: int, height: int, width: int, seed: int = 0):
    """(num, 3, height, width) uint8 noise: a batch of BGR images."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num, 3, height, width), dtype=np.uint8)
