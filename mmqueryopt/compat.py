"""Every workaround of third-party behaviour, each applied where needed.

Checked against torch 2.14.1, MMEngine 0.10.7, MMPretrain 1.2.0 and
mmcv-lite 2.2.0. Each function says which behaviour it works around, for
which versions, and whether a public API exists. Nothing here runs at
import: importing :mod:`mmqueryopt` only registers modules; the callers
(named in each docstring) apply these when they need them.
"""
import contextlib
import logging
import pickle
import warnings
from typing import Callable, Iterable, Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from torch.nn.parallel import DistributedDataParallel


@contextlib.contextmanager
def quiet_mmcv_ops_import() -> Iterator[None]:
    """Silence mmcv-lite's warning about its compiled ops while importing.

    mmcv-lite 2.2.0 has no compiled ops, and MMPretrain 1.2.0's import of
    mmcv's transformer bricks warns ``Fail to import
    ``MultiScaleDeformableAttention```` (an op no mmqueryopt model uses).
    The filter holds only inside this context (``warnings.catch_warnings``),
    so the process's warning settings are left alone. Used by
    ``mmqueryopt/__init__.py`` around the imports that reach MMPretrain.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore', message='Fail to import ``MultiScaleDeformableAttention``',
            category=UserWarning)
        yield


def _history_buffer_method(owner, name: str):
    """Stands in for ``getattr`` when unpickling: each pickled HistoryBuffer
    carries its statistics methods as ``getattr(HistoryBuffer, 'mean')``, and
    a general ``getattr`` would open any attribute of any allowed object."""
    allowed = {'min', 'max', 'current', 'mean',
               *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'Unsupported getattr({owner!r}, {name!r}): only HistoryBuffer '
        f'statistics methods are allowed')


def mmengine_checkpoint_globals() -> List:
    """The non-tensor types of MMEngine checkpoints, for
    ``torch.serialization.safe_globals``.

    torch >= 2.6 (here 2.14.1) unpickles with ``weights_only=True`` by
    default, and MMEngine 0.10.7 saves objects that loader refuses: the
    message hub's ``HistoryBuffer`` (with its statistics methods pickled as
    ``getattr(HistoryBuffer, name)``), numpy scalars, arrays and dtypes
    (open-mmlab/mmengine#1655; fixed on MMEngine's main branch, unreleased).
    Allowing exactly these keeps the safe unpickler; ``builtins.getattr`` is
    replaced by a stand-in that allows HistoryBuffer's statistics methods
    only. :func:`mmqueryopt.fileio.load_checkpoint_file` passes the list to
    ``torch.serialization.safe_globals`` (public, scoped to the call)
    instead of adding it process-wide.

    Returns:
        list: Classes and functions, and ``(stand-in, 'builtins.getattr')``.
    """
    dtype_classes = [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType')
    ]
    return [
        HistoryBuffer,
        np._core.multiarray.scalar,
        np._core.multiarray._reconstruct,
        np.ndarray,
        np.dtype,
        *dtype_classes,
        (_history_buffer_method, 'builtins.getattr'),
    ]


def route_local_checkpoint_loading(loader: Callable) -> None:
    """Make ``loader`` MMEngine's loader for local checkpoint paths.

    MMEngine 0.10.7's local loader calls ``torch.load`` bare: under torch
    >= 2.6 it refuses MMEngine's own checkpoints (see
    :func:`mmengine_checkpoint_globals`), and its errors name neither the
    file nor the cause (a truncated file ends in ``OSError: [Errno 22]
    Invalid argument``). Its scheme registry
    (``CheckpointLoader.register_scheme``, public) is the one place every
    local load passes (``Runner.load_checkpoint`` and ``resume``,
    ``mmengine.runner.load_checkpoint``, ``init_cfg`` 'Pretrained'); a
    Runner subclass would miss the last two. MMEngine offers no scoped way
    to choose a loader, so the replacement holds for the rest of the
    process. Applied by :class:`mmqueryopt.engine.AtomicCheckpointHook`
    in ``before_run``, which every runner of our configs (``tools/``,
    MMPretrain's tools through ``custom_imports``) calls before it loads a
    checkpoint; call it yourself before ``mmengine.runner.load_checkpoint``
    outside a runner.

    Args:
        loader (Callable): ``loader(filename, map_location)`` returning the
            checkpoint (:func:`mmqueryopt.fileio.load_checkpoint_file`).
    """
    CheckpointLoader.register_scheme(prefixes='', loader=loader, force=True)


def ignore_in_ddp_broadcast(module: torch.nn.Module,
                            names: Iterable[str]) -> None:
    """Keep DDP from broadcasting (or reducing) these parameters/buffers.

    ``DistributedDataParallel`` (torch 2.14.1) broadcasts every buffer from
    rank 0 at each forward by default; a buffer each rank fills with its own
    rows (ADSH's U) would be overwritten. torch has no public per-buffer
    switch (``broadcast_buffers=False`` stops BatchNorm's statistics too);
    the static ``_set_params_and_buffers_to_ignore_for_model`` (private,
    used by torch's own tests and FSDP) marks names on the module before it
    is wrapped. Call from the model's ``__init__``.

    Args:
        module (torch.nn.Module): The model DDP will wrap.
        names (Iterable[str]): Fully qualified parameter/buffer names.
    """
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, list(names))


def refresh_val_interval(loop) -> None:
    """Have an ``EpochBasedTrainLoop`` choose its ``val_interval`` for its
    current epoch now.

    MMEngine 0.10.7 updates ``val_interval`` (``dynamic_intervals``) only
    at the end of an epoch, so a resumed loop holds its initial interval
    until then. ``_decide_current_val_interval`` (private, no public
    equivalent) is what the loop itself calls. Used by
    :class:`mmqueryopt.engine.ResumeEvaluationHook`.

    Args:
        loop (EpochBasedTrainLoop): The training loop.
    """
    loop._decide_current_val_interval()


def run_uncompiled(model: torch.nn.Module, method: str = 'train_step') -> None:
    """Undo the Runner's ``torch.compile`` of ``model.<method>``.

    MMEngine 0.10.7's ``Runner._maybe_compile`` compiles by setting the
    compiled function on the model instance; it has no switch to undo it.
    Deleting the instance attribute brings back the class's eager method.
    Used by :class:`mmqueryopt.engine.SpeedSwitchHook` when compiling cannot
    work on the machine.

    Args:
        model (torch.nn.Module): The runner's (wrapped) model.
        method (str): The compiled method. Defaults to ``'train_step'``.
    """
    if method in vars(model):
        delattr(model, method)


class _DropMessages(logging.Filter):
    """Drops log records whose message starts with one of ``starts``."""

    def __init__(self, *starts: str):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def drop_file_client_deprecation(logger: logging.Logger) -> None:
    """Drop MMEngine's ``FileClient`` deprecation messages from ``logger``.

    MMEngine 0.10.7's ``CheckpointHook`` builds ``FileClient`` objects it
    never uses when ``file_client_args`` is None, in ``before_train`` and at
    every save, and each logs a deprecation warning about an API no config
    of ours touches. MMEngine has no setting to stop it; the filter goes on
    the run's logger only (added once). Used by
    :class:`mmqueryopt.engine.AtomicCheckpointHook`.

    Args:
        logger (logging.Logger): The run's logger (``MMLogger``).
    """
    if not any(isinstance(f, _DropMessages) for f in logger.filters):
        logger.addFilter(
            _DropMessages('"FileClient" will be deprecated',
                          '"HardDiskBackend" is the alias'))
