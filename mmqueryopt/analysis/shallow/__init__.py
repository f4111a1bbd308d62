"""Shallow hashing on deep features: LSH, ITQ and SDH learned from the
frozen, pooled backbone-and-neck features of any config
(``tools/analysis_tools/shallow_hash.py``, docs/shallow_hashing.md).

* :mod:`.features`: what "the feature" of a neck's output is.
* :class:`LSH`, :class:`ITQ`, :class:`SDH`: ``fit(features[, labels])``
  on the database, ``encode(features)`` for any split; float64 numpy.
"""
from .base import ShallowHash
from .features import backbone_neck_features, describe_feature, pooled_feature
from .itq import ITQ
from .lsh import LSH
from .sdh import SDH

#: The methods by their command-line names.
SHALLOW_METHODS = dict(lsh=LSH, itq=ITQ, sdh=SDH)

__all__ = [
    'ShallowHash', 'LSH', 'ITQ', 'SDH', 'SHALLOW_METHODS',
    'backbone_neck_features', 'describe_feature', 'pooled_feature'
]
