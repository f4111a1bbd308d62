"""MMEngine's CheckpointHook made safe against a kill at any moment."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import MMLogger

from mmqueryopt.compat import (drop_file_client_deprecation,
                               route_local_checkpoint_loading)
from mmqueryopt.fileio import (ATOMIC_BACKEND, atomic_write, load_from_local,
                               remove_stale_temp_files)
from mmqueryopt.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` that never leaves a partial
    file, and never removes a checkpoint before its successor is in place.

    MMEngine's hook writes checkpoints and ``last_checkpoint`` in place, and
    deletes the checkpoint that ``max_keep_ckpts`` retires (and the previous
    best one) *before* writing the new one. A kill while writing then leaves
    a truncated newest checkpoint, a truncated or empty ``last_checkpoint``,
    and with ``max_keep_ckpts=1`` no intact checkpoint at all. Here every
    file is written to a temporary file and renamed into place
    (:class:`AtomicLocalBackend`, :func:`atomic_write`); ``last_checkpoint``
    moves on only after the checkpoint it names is complete, and a retired
    checkpoint is removed last. At every moment ``last_checkpoint`` names an
    intact file; a kill between the steps at worst leaves one retired file
    on disk.

    Args:
        *args, **kwargs: As for :class:`~mmengine.hooks.CheckpointHook`.
            Without ``backend_args`` and ``file_client_args`` (local files),
            checkpoints are written through :class:`AtomicLocalBackend`;
            other backends write as they do, the ordering above still holds.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in str(self.out_dir or '')):
            self.backend_args = dict(backend=ATOMIC_BACKEND)

    def before_run(self, runner) -> None:
        """Load checkpoints safely: before the runner loads any (``load_from``,
        ``resume``, ``init_cfg``), MMEngine's local loader becomes
        :func:`mmqueryopt.fileio.load_checkpoint_file`
        (:func:`mmqueryopt.compat.route_local_checkpoint_loading` says why).

        Args:
            runner (Runner): The runner.
        """
        route_local_checkpoint_loading(load_from_local)

    def before_train(self, runner) -> None:
        """Set up as MMEngine does, then remove the temporary files that a
        killed run left in the checkpoint folder.

        Args:
            runner (Runner): The runner of the training process.
        """
        drop_file_client_deprecation(MMLogger.get_current_instance())
        super().before_train(runner)
        if not is_main_process():
            return
        # last_checkpoint is written atomically wherever checkpoints go.
        folders = {runner.work_dir}
        if self.backend_args == dict(backend=ATOMIC_BACKEND):
            folders.add(self.out_dir)
        for folder in sorted(folders):
            for path in remove_stale_temp_files(folder):
                runner.logger.info(
                    f'Removed {path}, left by a run killed while saving')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save ``epoch_{step}.pth`` (or ``iter_``), then point
        ``last_checkpoint`` at it, then remove the one it retires.

        Args:
            runner (Runner): The runner of the training process.
            step (int): The epoch or iteration in the file name.
            meta (dict): The checkpoint's meta.
        """
        retired = None
        # As MMEngine: the saved message hub already lists the kept ids, so
        # a resumed run does not track the retired file.
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(
            osp.join(runner.work_dir, 'last_checkpoint'),
            str(self.last_ckpt).encode())
        if retired is not None:
            self._remove(
                self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(retired)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """Save a new best checkpoint as MMEngine does, but remove the
        previous best only once the new one is written.

        Args:
            runner (Runner): The runner of the training process.
            metrics (dict): Evaluation results of all metrics.
        """
        if not self.save_best:
            return
        single = len(self.key_indicators) == 1
        previous = ({None: self.best_ckpt_path}
                    if single else dict(self.best_ckpt_path_dict))
        # MMEngine removes whatever these name before it writes the new
        # best; with them cleared it removes nothing.
        if single:
            self.best_ckpt_path = None
        else:
            self.best_ckpt_path_dict = dict.fromkeys(previous)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            current = ({None: self.best_ckpt_path}
                       if single else self.best_ckpt_path_dict)
            for key, path in previous.items():
                if current[key] is None:  # no new best for this key
                    current[key] = path
            if single:
                self.best_ckpt_path = current[None]
        for key, path in previous.items():
            if path and path != current[key] and is_main_process():
                self._remove(path)
                runner.logger.info(
                    f'The previous best checkpoint {path} is removed')

    def _remove(self, path: str) -> None:
        """Remove a checkpoint file (or a DeepSpeed checkpoint folder)."""
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)
