from .agmh_hash_head import AGMHHashHead
from .query_hash_head import QueryHashHead
from .tied_autoencoder_hash_head import TiedAutoencoderHashHead

__all__ = ['TiedAutoencoderHashHead', 'AGMHHashHead', 'QueryHashHead']
