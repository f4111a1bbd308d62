"""mmqueryopt: fine-grained image hashing (QueryOpt) for OpenMMLab.

Importing the package registers every module (ours and MMPretrain's) and makes
MMEngine checkpoints loadable under ``weights_only=True``.
"""
import warnings

# mmcv-lite has no compiled ops; MMPretrain's import of mmcv's transformer
# bricks warns about one (MultiScaleDeformableAttention) that no mmqueryopt
# model uses. Silenced here, before that import, for a clean console.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``',
    category=UserWarning)

from .engine.safe_globals import allow_mmengine_checkpoint_types  # noqa: E402
from .version import __version__  # noqa: E402

allow_mmengine_checkpoint_types()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from . import analysis  # noqa: E402,F401  (visualiser, hook)

__all__ = ['__version__']
