"""Understand a model's codes: attention maps, what each bit encodes, code
statistics, curves, gathered results, the QueryOpt paper's experiments
(complexity, Welch bound, query diversity, loss landscape, t-SNE) and
training curves for MMEngine's visualiser backends.

* :mod:`.attention`: attention maps drawn over the image the model saw
  (``tools/visualize_attention.py``).
* :mod:`.bits`: the images and classes of each bit's values
  (``tools/visualize_bits.py``).
* :mod:`.complexity`: parameters and MACs of a config's model
  (``tools/analysis_tools/get_flops.py``); :mod:`.complexity_table`: every
  method beside QueryOpt's Table 4
  (``tools/analysis_tools/complexity_table.py``).
* :mod:`.code_stats`: balance, correlation, distance histograms,
  quantisation error (``tools/analysis_tools/code_stats.py``).
* :mod:`.curves`: precision-recall and precision@N of evaluation dumps
  (``tools/analysis_tools/plot_curves.py``).
* :mod:`.loss_landscape`: Li et al.'s filter-normalised 2-D loss surface
  (``tools/analysis_tools/loss_landscape.py``, QueryOpt Figures 4 and 12).
* :mod:`.query_similarity`: cosine similarity of QueryOpt's queries and the
  attribute features they decode
  (``tools/analysis_tools/query_similarity.py``, Figure 8).
* :mod:`.results`: best mAP per run and the QueryOpt paper's Tables 1-3
  (``tools/analysis_tools/gather_results.py``).
* :mod:`.shallow`: LSH, ITQ and SDH on frozen pooled features
  (``tools/analysis_tools/shallow_hash.py``).
* :mod:`.tsne`: t-SNE of relaxed codes coloured by class
  (``tools/visualization/vis_tsne.py``, Figure 13).
* :mod:`.visualizer`: :class:`HashingVisualizer` (TensorBoard switch, PR
  curve images) and :class:`RoundVisualizerHook`.
* :mod:`.welch`: the Welch bound beside a model's largest cross-class
  cosine (``tools/analysis_tools/welch_bound.py``, Figure 3).

Plots use matplotlib on its Agg backend, imported when first drawing.
"""
from .visualizer import HashingVisualizer, RoundVisualizerHook

__all__ = ['HashingVisualizer', 'RoundVisualizerHook']
