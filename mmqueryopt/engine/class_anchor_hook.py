"""Hook that computes ExchNet's class anchors between rounds."""
import copy
import time
from typing import Optional
import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from torch.utils.data import DataLoader

from mmqueryopt.registry import HOOKS
from .utils import unwrap_model


@HOOKS.register_module()
class ClassAnchorHook(Hook):
    """After each round ``r`` with ``r + 1 >= model.neck.exchange_round``,
    set the database's class anchors (``ClassAnchorDatabase``) to the class
    means of the neck's part features (``ExchNetNeck.part_features``) over
    the whole training set (aassxun/DSH_Analysis ``adsh_exchnet.py``:
    after the B update of every iteration from ``align_step`` on).

    The pass runs the model in eval mode under no_grad over ``dataloader``
    (the training split with the test pipeline, as the reference's
    database loader), then restores train mode. Its priority (below
    normal) puts it after :class:`ADSHRoundHook`'s B update and before the
    checkpoint hook, so that the round's checkpoint carries the anchors.

    Every image counts once: the hook gives the loader a non-shuffling
    ``DefaultSampler`` without padding (``round_up=False``), so that under
    DDP each rank reads a disjoint shard; the per-class sums and counts
    (float64) are summed over the ranks, and every rank stores the same
    means. A class without training images keeps a zero anchor (the
    reference's would be 0/0); no training batch can ask for it.

    Args:
        dataloader (dict, optional): Loader of the training images with the
            test pipeline; its ``sampler`` is replaced as above. None (the
            default) derives it from the config: ``val_dataloader`` (batch
            size, workers) over ``train_dataloader.dataset`` with
            ``val_dataloader.dataset.pipeline``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, dataloader: Optional[dict] = None):
        if dataloader is not None and not isinstance(dataloader, dict):
            raise TypeError(
                f'ClassAnchorHook.dataloader must be a dataloader config '
                f'(dict) or None, got {type(dataloader).__name__}')
        self.dataloader = copy.deepcopy(dataloader)

    def before_train(self, runner) -> None:
        """Refuse a model without anchors' producer or keeper, or
        multi-label data, before any training is spent."""
        _check_model(unwrap_model(runner.model))
        labels = torch.as_tensor(
            runner.train_dataloader.dataset.get_gt_labels())
        if labels.dim() != 1:
            raise ValueError(
                'ExchNet\'s class anchors need one class id per training '
                f'image, got labels of shape {tuple(labels.shape)}')

    def after_train_epoch(self, runner) -> None:
        model = unwrap_model(runner.model)
        _check_model(model)
        if runner.epoch + 1 < model.neck.exchange_round:
            return
        start = time.time()
        anchors, images = self.class_means(runner)
        model.database.set_class_anchors(anchors)
        runner.logger.info(
            f'Class anchors after round {runner.epoch + 1}: part-feature '
            f'means of {images} images in {time.time() - start:.1f} s')

    @torch.no_grad()
    def class_means(self, runner) -> tuple:
        """Class means of the neck's part features over the loader.

        Returns:
            tuple[Tensor, int]: (num_classes, M, C') means in the database's
            dtype, and the number of images read over all ranks.
        """
        if not isinstance(self.dataloader, DataLoader):
            self.dataloader = runner.build_dataloader(
                self._loader_cfg(runner), seed=runner.seed)
        model = unwrap_model(runner.model)
        database = model.database
        # Class ids of the training set, as the database holds them.
        num_classes = int(database.labels.max()) + 1
        device = database.codes.device
        counts = torch.zeros(num_classes, dtype=torch.float64, device=device)
        # Sized before the loop: under DDP a rank may read no image.
        sums = torch.zeros(num_classes, model.neck.num_parts,
                           model.neck.out_channels, dtype=torch.float64,
                           device=device)
        was_training = model.training
        model.eval()
        try:
            for data_batch in self.dataloader:
                data = model.data_preprocessor(data_batch, False)
                parts = model.neck.part_features(
                    model.backbone(data['inputs']))
                labels = torch.cat(
                    [s.gt_label for s in data['data_samples']]).to(
                        sums.device)
                sums.index_add_(0, labels, parts.to(sums))
                counts.index_add_(
                    0, labels, torch.ones_like(labels, dtype=counts.dtype))
        finally:
            model.train(was_training)
        if is_distributed():
            all_reduce(sums, op='sum')
            all_reduce(counts, op='sum')
        means = sums / counts.clamp_min(1)[:, None, None]
        return means.to(database.codes.dtype), int(counts.sum())

    def _loader_cfg(self, runner) -> dict:
        if self.dataloader is not None:
            cfg = copy.deepcopy(self.dataloader)
        else:
            cfg = copy.deepcopy(runner.cfg.val_dataloader)
            cfg['dataset'] = dict(
                copy.deepcopy(runner.cfg.train_dataloader.dataset),
                pipeline=copy.deepcopy(
                    runner.cfg.val_dataloader.dataset.pipeline))
        cfg['sampler'] = dict(
            type='DefaultSampler', shuffle=False, round_up=False)
        return cfg


def _check_model(model) -> None:
    if not hasattr(model.neck, 'part_features'):
        raise TypeError(
            f'ClassAnchorHook averages the part features of a part neck '
            f'(model.neck=dict(type=\'ExchNetNeck\', ...)), got '
            f'{type(model.neck).__name__}: remove the hook from custom_hooks')
    if not hasattr(model.database, 'set_class_anchors'):
        raise TypeError(
            f'ClassAnchorHook needs a database that keeps class anchors '
            f"(model.database=dict(type='ClassAnchorDatabase', ...)), got "
            f'{type(model.database).__name__}')
