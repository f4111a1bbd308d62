"""Training curves in MMEngine's visualiser backends (local files,
TensorBoard): round means of the loss terms and the PR curve of every
evaluation, beside the per-iteration losses and the mAP that MMEngine's
``LoggerHook`` already sends there."""
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpretrain.visualization import UniversalVisualizer

from mmqueryopt.evaluation import HammingMAP
from mmqueryopt.registry import HOOKS, VISUALIZERS
from .figures import DPI, figure_to_array, pyplot

PR_CURVE_IMAGE = 'pr_curve'  # LocalVisBackend: vis_image/pr_curve_<round>


@VISUALIZERS.register_module()
class HashingVisualizer(UniversalVisualizer):
    """MMPretrain's visualiser with a TensorBoard switch and PR curves.

    Args:
        tensorboard (bool): Also write TensorBoard event files (to
            ``<log dir>/vis_data``; needs ``pip install -e
            ".[tensorboard]"``). Defaults to False.
        vis_backends (list[dict], optional): The backends; defaults to a
            ``LocalVisBackend``.
        **kwargs: ``UniversalVisualizer``'s other arguments.
    """

    def __init__(self, name: str = 'visualizer', tensorboard: bool = False,
                 vis_backends: Optional[Sequence[dict]] = None, **kwargs):
        backends = list(vis_backends or [dict(type='LocalVisBackend')])
        if tensorboard and not any(
                b.get('type') == 'TensorboardVisBackend' for b in backends):
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise ImportError(
                    'visualizer.tensorboard=True needs the tensorboard '
                    'package: pip install -e ".[tensorboard]"') from None
            backends.append(dict(type='TensorboardVisBackend'))
        super().__init__(name=name, vis_backends=backends, **kwargs)

    def add_pr_curve(self, precision: np.ndarray, recall: np.ndarray,
                     step: int, name: str = PR_CURVE_IMAGE) -> np.ndarray:
        """Draw a precision-recall curve and add it as an image.

        Args:
            precision, recall (np.ndarray): (k + 1,) over Hamming radii
                0..k.
            step (int): The round.
            name (str): Image name. Defaults to ``'pr_curve'``.

        Returns:
            np.ndarray: The (480, 640, 3) RGB image added.
        """
        image = pr_curve_image(precision, recall, f'round {step}')
        self.add_image(name, image, step=step)
        return image


def pr_curve_image(precision: np.ndarray, recall: np.ndarray,
                   title: str = '') -> np.ndarray:
    """A precision-recall curve over Hamming radii as a 640 x 480 RGB
    array, each point labelled with its radius every few radii."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=DPI)
    ax.plot(recall, precision, marker='o', markersize=3)
    step = max(1, len(recall) // 8)
    for radius in range(0, len(recall), step):
        ax.annotate(str(radius), (recall[radius], precision[radius]),
                    fontsize=7, xytext=(3, 3), textcoords='offset points')
    ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.02),
           ylim=(0, 1.02), title=f'precision-recall by radius {title}')
    ax.grid(alpha=0.3)
    return figure_to_array(fig)


@HOOKS.register_module()
class RoundVisualizerHook(Hook):
    """Send round summaries to the runner's visualiser backends.

    * After every round (training epoch): the mean of each loss term over
      the round's iterations, as ``round/<term>`` at step = the round
      (1-based), e.g. ``round/loss_hash``; rank 0's values, as in the log.
    * After every evaluation: the precision-recall curve over Hamming radii
      of the first ``HammingMAP`` metric, as the image ``pr_curve`` at step
      = the rounds done (needs :class:`HashingVisualizer`).
    """

    priority = 'LOW'

    def __init__(self):
        self._sums = defaultdict(float)
        self._count = 0

    def before_train_epoch(self, runner) -> None:
        self._sums.clear()
        self._count = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not outputs:
            return
        for key, value in outputs.items():
            if key.startswith('loss'):
                # Summed where they are: a float() here would make the host
                # wait for the device every iteration.
                if isinstance(value, torch.Tensor):
                    value = value.detach()
                self._sums[key] = self._sums[key] + value
        self._count += 1

    def after_train_epoch(self, runner) -> None:
        if self._count:
            runner.visualizer.add_scalars(
                {f'round/{key}': float(total) / self._count
                 for key, total in self._sums.items()},
                step=runner.epoch + 1)

    def before_val_epoch(self, runner) -> None:
        for metric in self._metrics(runner):
            metric.keep_pr_curve = True

    def after_val_epoch(self, runner, metrics=None) -> None:
        visualizer = runner.visualizer
        for metric in self._metrics(runner):
            if metric.pr_curve is None:
                continue  # another rank's metric: rank 0 computes
            if hasattr(visualizer, 'add_pr_curve'):
                visualizer.add_pr_curve(*metric.pr_curve, step=runner.epoch)
            metric.pr_curve = None
            return

    @staticmethod
    def _metrics(runner):
        evaluator = runner.val_evaluator
        return [m for m in getattr(evaluator, 'metrics', [])
                if isinstance(m, HammingMAP)]
