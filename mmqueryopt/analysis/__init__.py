"""Understand a model's codes: attention maps, what each bit encodes, code
statistics, curves, gathered results and training curves for MMEngine's
visualiser backends.

* :mod:`.attention`: attention maps drawn over the image the model saw
  (``tools/visualize_attention.py``).
* :mod:`.bits`: the images and classes of each bit's values
  (``tools/visualize_bits.py``).
* :mod:`.code_stats`: balance, correlation, distance histograms,
  quantisation error (``tools/analysis_tools/code_stats.py``).
* :mod:`.curves`: precision-recall and precision@N of evaluation dumps
  (``tools/analysis_tools/plot_curves.py``).
* :mod:`.results`: best mAP per run beside the papers
  (``tools/analysis_tools/gather_results.py``).
* :mod:`.shallow`: LSH, ITQ and SDH on frozen pooled features
  (``tools/analysis_tools/shallow_hash.py``).
* :mod:`.visualizer`: :class:`HashingVisualizer` (TensorBoard switch, PR
  curve images) and :class:`RoundVisualizerHook`.

Plots use matplotlib on its Agg backend, imported when first drawing.
"""
from .visualizer import HashingVisualizer, RoundVisualizerHook

__all__ = ['HashingVisualizer', 'RoundVisualizerHook']
