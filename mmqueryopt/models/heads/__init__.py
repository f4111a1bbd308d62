from .agmh_hash_head import AGMHHashHead
from .query_hash_head import QueryHashHead

__all__ = ['AGMHHashHead', 'QueryHashHead']
