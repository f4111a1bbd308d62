from .query_hash_head import QueryHashHead

__all__ = ['QueryHashHead']
