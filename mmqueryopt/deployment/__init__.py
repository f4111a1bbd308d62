"""Deployment: the encoder as an ONNX graph that runs without PyTorch.

* :class:`OnnxEncoder`: the traced module, preprocessing (the config's
  channel order, mean and std) + encoder + codes with ties to +1.
* :func:`export_onnx` / :func:`save_onnx` / :func:`read_onnx_meta`: the
  graph with the model's meta in its ``metadata_props``, checked against
  PyTorch, written atomically; :class:`OnnxExportError` names the module
  that cannot be exported.
* :func:`onnx_session`, :func:`run_onnx`, :func:`check_against_pytorch`:
  onnxruntime against ``tools/encode.py``'s PyTorch path.

onnx, onnxscript and onnxruntime are an optional extra
(``pip install -e ".[onnx]"``); they are imported when used.
"""
from .onnx_check import (RELAXED_TOLERANCE, Agreement, check_against_pytorch,
                         compare, onnx_session, pytorch_codes, random_bgr,
                         run_onnx)
from .onnx_encoder import OnnxEncoder
from .onnx_export import (DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAMES,
                          OnnxExportError, export_onnx,
                          image_size_from_config, read_onnx_meta, save_onnx,
                          set_metadata)

__all__ = [
    'RELAXED_TOLERANCE', 'Agreement', 'check_against_pytorch', 'compare',
    'onnx_session', 'pytorch_codes', 'random_bgr', 'run_onnx',
    'OnnxEncoder', 'DEFAULT_OPSET', 'INPUT_NAME', 'OUTPUT_NAMES',
    'OnnxExportError', 'export_onnx', 'image_size_from_config',
    'read_onnx_meta', 'save_onnx', 'set_metadata'
]
