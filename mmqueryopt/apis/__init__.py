"""Use a trained model from Python without writing a config.

* :class:`HashSearcher`: a model by name (``mmpretrain.list_models(
  task='Image Retrieval')``) or config file, and its checkpoint: the codes
  of images, a gallery index of a folder, a list of images or a codes file,
  and exact Hamming search, ranked as ``tools/search.py`` ranks.

MMPretrain's own ``ImageRetrievalInferencer`` also takes our models
(docs/inference.md shows both).
"""
from .hash_searcher import HashSearcher

__all__ = ['HashSearcher']
