from .hamming_map import HammingMAP

__all__ = ['HammingMAP']
