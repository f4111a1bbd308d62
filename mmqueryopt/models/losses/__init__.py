from .a2net_loss import A2NetLoss
from .adsh_loss import ADSHLoss
from .agmh_loss import AGMHLoss
from .attention_dispersion_loss import AttentionDispersionLoss

__all__ = [
    'A2NetLoss', 'AGMHLoss', 'AttentionDispersionLoss', 'ADSHLoss'
]
