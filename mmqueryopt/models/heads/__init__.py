from .agmh_hash_head import AGMHHashHead
from .base_hash_head import BaseHashHead
from .query_hash_head import QueryHashHead
from .tied_autoencoder_hash_head import TiedAutoencoderHashHead

__all__ = [
    'AGMHHashHead', 'BaseHashHead', 'QueryHashHead', 'TiedAutoencoderHashHead'
]
