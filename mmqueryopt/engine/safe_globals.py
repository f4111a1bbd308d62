"""Let ``torch.load(weights_only=True)`` read MMEngine's own checkpoints.

MMEngine 0.10.7 calls ``torch.load`` with torch's default ``weights_only=True``
and then fails on the objects it saved itself (the message hub's
``HistoryBuffer``, numpy scalars, arrays and dtypes), which breaks ``--resume``,
``load_from`` and ``tools/test.py``. Allow-listing these few types keeps the safe
loader (no arbitrary code runs) instead of turning it off.
"""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _history_buffer_method(owner, name: str):
    """Stands in for ``getattr`` when unpickling: each pickled HistoryBuffer
    carries its statistics methods as ``getattr(HistoryBuffer, 'mean')``, and
    a general ``getattr`` would open any attribute of any allowed object."""
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only '
        f'HistoryBuffer statistics methods are allowed')


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list the non-tensor types found in MMEngine checkpoints."""
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType')
    ]
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        np._core.multiarray.scalar,
        np._core.multiarray._reconstruct,
        np.ndarray,
        np.dtype,
        *dtype_classes,
        (_history_buffer_method, 'builtins.getattr'),
    ])
