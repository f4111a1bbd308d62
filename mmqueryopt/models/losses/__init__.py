from mmqueryopt.registry import import_submodules
from .a2net_loss import A2NetLoss
from .adsh_loss import ADSHLoss
from .agmh_loss import AGMHLoss
from .attention_dispersion_loss import AttentionDispersionLoss

# Any further module of this folder registers its parts too.
import_submodules(__name__)

__all__ = [
    'A2NetLoss', 'AGMHLoss', 'AttentionDispersionLoss', 'ADSHLoss'
]
