"""Training log lines that say which ADSH round and pass they belong to."""
from typing import Tuple

from mmengine.runner import LogProcessor

from mmqueryopt.registry import LOG_PROCESSORS
from .round_sampler import RoundBatchSampler


@LOG_PROCESSORS.register_module()
class RoundLogProcessor(LogProcessor):
    """MMEngine's log processor with training headers in rounds and passes.

    ``Epoch(train) [3][250/3750]`` becomes ``Round(train) [3/40][pass 3/30]
    [ 0/125]``: the round (= epoch), the pass over the round's sampled
    images (the paper's epoch) and the batch within the pass. Validation,
    test and non-round loaders keep MMEngine's format.
    """

    def get_log_after_iter(self, runner, batch_idx: int,
                           mode: str) -> Tuple[dict, str]:
        tag, log_str = super().get_log_after_iter(runner, batch_idx, mode)
        batch_sampler = getattr(runner.train_dataloader, 'batch_sampler',
                                None)
        if mode != 'train' or not self.by_epoch or not isinstance(
                batch_sampler, RoundBatchSampler):
            return tag, log_str
        batches_per_pass = batch_sampler.batches_per_pass
        passes = batch_sampler.sampler.epochs_per_round
        pass_idx, batch_in_pass = divmod(batch_idx, batches_per_pass)
        width = len(str(batches_per_pass))
        header = (f'Round(train) [{runner.epoch + 1}/{runner.max_epochs}]'
                  f'[pass {pass_idx + 1}/{passes}]'
                  f'[{str(batch_in_pass + 1).rjust(width)}/'
                  f'{batches_per_pass}]  ')
        # MMEngine's header ends at the first "]  " (before lr and losses).
        return tag, header + log_str.split(']  ', 1)[1]
