"""Hook that redoes an evaluation a killed run may not have finished."""
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from mmqueryopt.compat import refresh_val_interval
from mmqueryopt.registry import HOOKS


@HOOKS.register_module()
class ResumeEvaluationHook(Hook):
    """Validate first when a run resumes at an epoch that validates.

    MMEngine saves an epoch's checkpoint before that epoch's validation, so a
    run killed during (or just before) validation resumes after it and never
    evaluates that epoch: the best-of protocol misses a round, and a run
    killed in its final evaluation ends, once resumed, without a final
    result. Evaluation is deterministic given the weights and B, so when the
    killed run had finished it, doing it again gives the same numbers.
    """

    priority = 'LOWEST'  # after every hook that prepares training

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if (runner.iter == 0 or runner.val_loop is None
                or not isinstance(loop, EpochBasedTrainLoop)
                or loop.epoch < loop.val_begin):
            return
        # The interval the loop chose right after this epoch ended.
        refresh_val_interval(loop)
        if loop.epoch % loop.val_interval == 0 or (loop.epoch
                                                   == loop.max_epochs):
            runner.logger.info(
                f'Resumed at epoch {loop.epoch}, which validates: '
                f'validating first (the checkpoint precedes validation)')
            runner.val_loop.run()
