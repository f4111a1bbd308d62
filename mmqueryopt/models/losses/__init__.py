from .adsh_loss import ADSHLoss, similarity
from .agmh_loss import AGMHLoss
from .attention_dispersion_loss import AttentionDispersionLoss

__all__ = ['AGMHLoss', 'AttentionDispersionLoss', 'ADSHLoss', 'similarity']
