"""MMEngine's local file backend with atomic writes, for checkpoints."""
import os
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from .atomic import atomic_write

# The name AtomicLocalBackend is registered under, for backend_args.
ATOMIC_BACKEND = 'atomic_local'


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic :meth:`put`.

    ``Runner.save_checkpoint`` ends in ``file_backend.put(bytes, path)``;
    selecting this backend (``backend_args=dict(backend=ATOMIC_BACKEND)``)
    makes every checkpoint it writes appear whole or not at all.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write ``obj`` to ``filepath`` through :func:`atomic_write`.

        Args:
            obj (bytes): Data to write.
            filepath (str or PathLike): Where.
        """
        atomic_write(str(filepath), obj)
