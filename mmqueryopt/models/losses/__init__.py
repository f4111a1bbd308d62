from .adsh_loss import ADSHLoss, similarity

__all__ = ['ADSHLoss', 'similarity']
