"""OpenMP defaults for the tools: importing this module applies them.

torch's CPU kernels run on GNU OpenMP (libgomp). Its threads, by default,
spin for up to ``GOMP_SPINCOUNT=300000`` iterations (libgomp's estimate:
3 ms) before they sleep, each time they wait for a teammate at the end of
a parallel region. On cores that other programs also want, a teammate is
often not running, and the spinning thread burns the core the teammate
or the other program needed: the main job went from 0.05 s to over 2 s an
iteration with two busy-looping programs on two cores (docs/speed.md,
"Threads on a busy machine"). With ``OMP_WAIT_POLICY=PASSIVE`` waiting
threads sleep at once; idle speed stays the same and a loaded machine
slows the job down in proportion to the load.

libgomp reads these variables once, when it is loaded, i.e. on
``import torch``: each tool imports this module before anything that
imports torch (``mmqueryopt`` included), so the setting has to live
outside the package (whose ``__init__`` imports torch). As a plain
import it keeps the tools' import blocks free of statements.
"""
import os
from typing import Dict, MutableMapping, Optional

#: What the tools set when the user has not chosen an OpenMP wait policy.
OPENMP_DEFAULTS = {'OMP_WAIT_POLICY': 'PASSIVE'}

#: Variables by which a user chooses how OpenMP threads wait: OpenMP's
#: own, libgomp's spin count and Intel OpenMP's block time. Any of them
#: set means the user decided, and nothing is changed.
USER_WAIT_SETTINGS = ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'KMP_BLOCKTIME')


def set_openmp_defaults(
        environ: Optional[MutableMapping[str, str]] = None
) -> Dict[str, str]:
    """Put :data:`OPENMP_DEFAULTS` into the environment unless the user
    chose a wait setting (:data:`USER_WAIT_SETTINGS`).

    The thread count is left to torch (one thread per CPU this process
    may run on) or to the user's ``OMP_NUM_THREADS``: with passive waiting,
    threads that find their cores taken cost no more than the work they
    do. Dataloader workers get one torch thread each from torch, and no
    OpenCV threads from ``env_cfg.mp_cfg.opencv_num_threads=0``.

    Args:
        environ (MutableMapping[str, str], optional): The environment to
            change. Defaults to ``os.environ``.

    Returns:
        dict[str, str]: The variables set (empty when the user's own
        setting wins).
    """
    environ = os.environ if environ is None else environ
    if any(name in environ for name in USER_WAIT_SETTINGS):
        return {}
    environ.update(OPENMP_DEFAULTS)
    return dict(OPENMP_DEFAULTS)


set_openmp_defaults()
