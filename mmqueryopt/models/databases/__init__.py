from .adsh_database import ADSHDatabase, similarity, soft_negative
from .base import DatabaseView, HashDatabase
from .encoded_database import EncodedDatabase

__all__ = [
    'ADSHDatabase', 'DatabaseView', 'EncodedDatabase', 'HashDatabase',
    'similarity', 'soft_negative'
]
