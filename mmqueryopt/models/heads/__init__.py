from mmqueryopt.registry import import_submodules
from .agmh_hash_head import AGMHHashHead
from .base_hash_head import BaseHashHead
from .linear_hash_head import LinearHashHead
from .query_hash_head import QueryHashHead
from .tied_autoencoder_hash_head import TiedAutoencoderHashHead

# Any further module of this folder registers its parts too.
import_submodules(__name__)

__all__ = [
    'AGMHHashHead', 'BaseHashHead', 'LinearHashHead', 'QueryHashHead',
    'TiedAutoencoderHashHead'
]
