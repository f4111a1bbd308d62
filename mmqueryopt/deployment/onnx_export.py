"""Export an encoder to ONNX: the graph, its metadata, its check, its file.

Two exporters of ``torch.onnx.export``:

* ``dynamo=False`` (TorchScript tracing, the default here): every method's
  model exports and gives PyTorch's codes, with the batch axis dynamic from
  a one-image example, in 1-4 s for a ResNet-50 model on this machine.
* ``dynamo=True`` (``torch.export``, torch's default since 2.9; needs
  onnxscript): exports every method too and refuses data-dependent control
  flow instead of fixing it, but took 11-57 s per model, and from a
  one-image example it fixed QueryOpt's batch axis at 1 without a word (the
  graph refused a batch of 3); it is therefore given a two-image example.

Tracing records the branch a Python ``if`` on tensor values took; the
check after the export (onnxruntime against PyTorch's encode path on
random images, at a batch size other than the example's) refuses such a
graph instead of writing it.
"""
import io
import logging
import warnings
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from mmqueryopt.version import __version__
from .failure import (ModuleStack, describe, first_line, innermost_failing,
                      module_at, record_inputs)
from .onnx_encoder import OnnxEncoder

INPUT_NAME = 'images'
OUTPUT_NAMES = ('codes', 'relaxed')
#: Opsets by exporter: 17 is read by onnxruntime >= 1.14; the dynamo
#: exporter's torchlib starts at 18.
DEFAULT_OPSET = {False: 17, True: 18}
#: What the metadata says about the graph (beside the model's meta).
INPUT_FORMAT = 'float32 (N, 3, H, W) RGB in 0-255'
CODE_RULE = 'codes = +1 where relaxed >= 0, else -1 (int8)'
PACKING = ('codes file rows: numpy.packbits(codes > 0, axis=1) '
           '(most significant bit first)')
# Geometric test transforms that fix the image size (CenterCrop,
# RandomCrop: crop_size; Resize without keep_ratio: scale), and those
# after which it is not fixed.
_CROPS = ('CenterCrop', 'RandomCrop')
_VARIABLE = ('ResizeEdge', 'RandomResize', 'RandomResizedCrop')


class OnnxExportError(RuntimeError):
    """The model cannot be exported or its graph disagrees with PyTorch;
    the message is one line naming the module at fault when known."""


def image_size_from_config(cfg) -> Optional[Tuple[int, int]]:
    """The (height, width) the config's test pipeline gives every image.

    Args:
        cfg (mmengine.Config): The config.

    Returns:
        tuple[int, int] | None: From the last transform that sets the
        size (a crop's ``crop_size`` or a ``Resize`` ``scale`` without
        ``keep_ratio``); None when the size is the image's own or varies.
    """
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return None
    for transform in reversed(list(pipeline)):
        kind = transform.get('type')
        kind = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        kind = kind.split('.')[-1]
        if kind in _CROPS:
            return _height_width(transform.get('crop_size'))
        if kind == 'Resize':
            if transform.get('keep_ratio'):
                return None
            return _height_width(transform.get('scale'))
        if kind in _VARIABLE:
            return None
    return None


def _height_width(size) -> Optional[Tuple[int, int]]:
    """MMCV's ``int | (w, h)`` size as (h, w)."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, Sequence) and len(size) == 2 and all(
            isinstance(v, int) for v in size):
        return int(size[1]), int(size[0])
    return None


def export_onnx(model: nn.Module,
                image_size: Tuple[int, int],
                meta: Optional[Dict[str, object]] = None,
                opset: Optional[int] = None,
                dynamic_batch: bool = True,
                dynamo: bool = False,
                check: bool = True):
    """The ONNX graph of a model's encoder, checked against PyTorch.

    Args:
        model (nn.Module): A ``HashRetriever`` in eval mode (wrapped in
            :class:`OnnxEncoder` here).
        image_size (tuple[int, int]): (H, W) of the input.
        meta (dict, optional): Written to the graph's ``metadata_props``,
            e.g. :func:`~mmqueryopt.retrieval.encoder.model_meta` (method,
            nbits, weights_sha256, config); values as strings.
        opset (int, optional): Default :data:`DEFAULT_OPSET`.
        dynamic_batch (bool): Leave the batch axis free. Defaults to True.
        dynamo (bool): Use the ``torch.export`` exporter (needs
            onnxscript). Defaults to False (tracing).
        check (bool): Run the graph with onnxruntime on random images
            (three with a dynamic batch) and refuse it unless it gives
            PyTorch's codes. Defaults to True.

    Returns:
        onnx.ModelProto: Input ``images``; outputs ``codes`` (N, k) int8
        and ``relaxed`` (N, k) float32.

    Raises:
        OnnxExportError: The model does not run at ``image_size``, a module
            cannot be exported (named), or the graph disagrees with
            PyTorch.
    """
    import onnx
    encoder = OnnxEncoder(model)
    height, width = image_size
    opset = opset or DEFAULT_OPSET[dynamo]
    # One image for tracing, whose batch axis stays symbolic; two for
    # torch.export, which silently fixes an axis of example size 1.
    batch = 2 if dynamo and dynamic_batch else 1
    example = torch.rand(batch, 3, height, width) * 255
    try:
        calls = record_inputs(encoder, example)
    except Exception as error:
        raise OnnxExportError(
            f'the model does not run on {height}x{width} images '
            f'({first_line(error)}); pass the size it was trained at with '
            f'--shape H W') from None

    def exports(module: nn.Module, args: tuple) -> bool:
        try:
            _export(module, args, opset, dynamo, None)
            return True
        except Exception:
            return False

    stack = ModuleStack(encoder)
    try:
        with stack:
            proto = _export(encoder, (example, ), opset, dynamo,
                            dynamic_batch)
    except Exception as error:
        if isinstance(error, FrozenByTracing):
            name = module_at(encoder, error.filename, error.lineno)
        else:
            name = stack.innermost() or innermost_failing(
                encoder, calls, exports)
        where = (f'module {describe(encoder, name, strip="model.")}'
                 if name else "the model's own forward")
        raise OnnxExportError(
            f'cannot export to ONNX: {where} is not traceable '
            f'({first_line(error)})') from None
    for output in proto.graph.output:
        # Tracing leaves the code axis symbolic ('Castcodes_dim_1'); it is k.
        dims = output.type.tensor_type.shape.dim
        if len(dims) == 2:
            dims[1].dim_value = encoder.code_length
    onnx.checker.check_model(proto, full_check=True)
    set_metadata(
        proto,
        dict(meta or {}, image_size=f'{height}x{width}', input=INPUT_FORMAT,
             code_rule=CODE_RULE, packing=PACKING,
             mmqueryopt_version=__version__))
    if check:
        _check(proto, model, (3 if dynamic_batch else example.size(0),
                              height, width), dynamo)
    return proto


def _export(module: nn.Module, args: tuple, opset: int, dynamo: bool,
            dynamic_batch: Optional[bool]):
    """``torch.onnx.export`` into memory. ``dynamic_batch=None``: a
    submodule's probe (no names, no dynamic axes)."""
    import onnx
    from torch.jit import TracerWarning
    named = dynamic_batch is not None
    names = dict(input_names=[INPUT_NAME],
                 output_names=list(OUTPUT_NAMES)) if named else {}
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        # The exporters' chatter (tracing's warnings about Python values
        # taken from shapes, the deprecation of tracing) says nothing a user
        # acts on; a tensor taken to NumPy is data the graph would freeze.
        warnings.simplefilter('ignore')
        warnings.simplefilter('always', TracerWarning)
        if dynamo:
            shapes = None
            if dynamic_batch:
                shapes = ({0: torch.export.Dim('batch')}, )
            # onnxscript's optimiser logs a warning per multi-output op it
            # does not fold: nothing to act on.
            optimizer_log = logging.getLogger('onnxscript')
            level = optimizer_log.level
            optimizer_log.setLevel(logging.ERROR)
            try:
                program = torch.onnx.export(
                    module, args, dynamo=True, opset_version=opset,
                    dynamic_shapes=shapes, verbose=False, **names)
            finally:
                optimizer_log.setLevel(level)
            proto = program.model_proto
        else:
            buffer = io.BytesIO()
            axes = None
            if dynamic_batch:
                axes = {name: {0: 'batch'}
                        for name in (INPUT_NAME, ) + OUTPUT_NAMES}
            torch.onnx.export(module, args, buffer, dynamo=False,
                              opset_version=opset, dynamic_axes=axes,
                              **names)
            proto = onnx.load_from_string(buffer.getvalue())
    frozen = next((w for w in caught
                   if issubclass(w.category, TracerWarning)
                   and 'numpy' in str(w.message).lower()), None)
    if frozen is not None:
        raise FrozenByTracing(frozen.filename, frozen.lineno,
                              str(frozen.message).split('.')[0])
    return proto


class FrozenByTracing(RuntimeError):
    """Tracing took a tensor to NumPy: the graph would hold the example's
    values as a constant."""

    def __init__(self, filename: str, lineno: int, message: str):
        super().__init__(f'{message} at {filename}:{lineno}')
        self.filename, self.lineno = filename, lineno


def _check(proto, model: nn.Module, shape: Tuple[int, int, int],
           dynamo: bool) -> None:
    from .onnx_check import check_against_pytorch, onnx_session, random_bgr
    agreement = check_against_pytorch(
        onnx_session(proto.SerializeToString()), model,
        random_bgr(*shape, seed=1))
    if not agreement.ok:
        advice = ('' if dynamo else '; a Python branch on tensor values '
                  'is fixed by tracing: try --dynamo, which refuses one')
        raise OnnxExportError(
            f'the ONNX graph disagrees with PyTorch on random images '
            f'({agreement.summary()}){advice}')


def set_metadata(proto, meta: Dict[str, object]) -> None:
    """Write ``meta`` into ``proto.metadata_props`` (values as strings),
    replacing entries of the same keys."""
    kept = [(entry.key, entry.value) for entry in proto.metadata_props
            if entry.key not in meta]
    del proto.metadata_props[:]
    for key, value in kept + [(k, str(v)) for k, v in meta.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_onnx_meta(model) -> Dict[str, object]:
    """The metadata of an exported encoder, ``nbits`` as an int: the meta
    :func:`~mmqueryopt.fileio.check_same_model` compares with a codes
    file's.

    Args:
        model (str | onnx.ModelProto): An ``.onnx`` file or a graph.

    Returns:
        dict: ``metadata_props`` as a dict.
    """
    import onnx
    if isinstance(model, str):
        model = onnx.load(model, load_external_data=False)
    meta: Dict[str, object] = {
        entry.key: entry.value
        for entry in model.metadata_props
    }
    if 'nbits' in meta:
        meta['nbits'] = int(meta['nbits'])
    return meta


def save_onnx(proto, path: str) -> None:
    """Write the graph whole or not at all
    (:func:`~mmqueryopt.fileio.atomic_write`)."""
    from mmqueryopt.fileio import atomic_write
    atomic_write(path, proto.SerializeToString())
