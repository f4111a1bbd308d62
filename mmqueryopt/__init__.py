"""mmqueryopt: fine-grained image hashing (QueryOpt) for OpenMMLab.

Importing the package registers every module (ours and MMPretrain's) and makes
MMEngine checkpoints loadable under ``weights_only=True``.
"""
from .engine.safe_globals import allow_mmengine_checkpoint_types
from .version import __version__

allow_mmengine_checkpoint_types()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
