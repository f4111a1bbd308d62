"""mmqueryopt: fine-grained image hashing (QueryOpt) for OpenMMLab.

Importing the package registers every module (ours and MMPretrain's), and
does nothing else to the process: the workarounds of third-party behaviour
(:mod:`mmqueryopt.compat`) are applied where they are needed.
"""
from .compat import quiet_mmcv_ops_import
from .version import __version__

with quiet_mmcv_ops_import():
    from . import datasets, engine, evaluation, models  # noqa: F401
    from . import analysis  # noqa: F401  (visualiser, hook)

from .model_index import register_model_index  # noqa: E402

register_model_index()  # the configs' models in mmpretrain.get_model

__all__ = ['__version__']
