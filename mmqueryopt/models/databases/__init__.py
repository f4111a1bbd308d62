from mmqueryopt.registry import import_submodules
from .adsh_database import ADSHDatabase, similarity, soft_negative
from .base import DatabaseView, HashDatabase
from .encoded_database import EncodedDatabase

# Any further module of this folder registers its parts too.
import_submodules(__name__)

__all__ = [
    'ADSHDatabase', 'DatabaseView', 'EncodedDatabase', 'HashDatabase',
    'similarity', 'soft_negative'
]
