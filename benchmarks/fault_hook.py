"""Benchmark-only hook for ``fault_injection.py``: time the phases of a run,
or SIGKILL the process at a planned moment inside one.

A run imports it through its config's ``custom_imports`` (``benchmarks/`` on
PYTHONPATH). With ``MMQUERYOPT_FAULT`` unset it only records when each phase
starts and how long it takes; with ``MMQUERYOPT_FAULT='{"phase": ...,
"epoch": ..., "index": ..., "delay": ...}'`` it arms a timer when that phase
occurrence starts, and the timer kills the process ``delay`` seconds later,
wherever it then is (in the phase when the delay is shorter than the phase).
"""
import json
import os
import os.path as osp
import signal
import threading
import time

from mmengine.hooks import Hook

from mmqueryopt.engine import unwrap_model
from mmqueryopt.registry import HOOKS

PHASES = ('batch', 'b_update', 'checkpoint', 'evaluation')


@HOOKS.register_module()
class FaultHook(Hook):
    """Wrap each phase of training, to time it or to kill inside it.

    Phases: ``batch`` (one training iteration), ``b_update`` (ADSH's B
    solve), ``checkpoint`` (``runner.save_checkpoint``), ``evaluation`` (one
    validation run). An occurrence is named by the phase, ``runner.epoch``
    when it starts and its index among that phase's occurrences in the epoch.

    Args:
        record_file (str): JSON lines of ``[phase, epoch, index, seconds,
            file name (checkpoints only)]`` written at the end of an
            unplanned run.
    """

    priority = 'LOWEST'

    def __init__(self, record_file: str):
        self.record_file = record_file
        fault = os.environ.get('MMQUERYOPT_FAULT')
        self.fault = json.loads(fault) if fault else None
        self.events = []
        self._counts = {}

    def before_run(self, runner) -> None:
        # Before the resume, whose hooks may already evaluate.
        model = unwrap_model(runner.model)
        model.database.end_round = self._wrap(
            'b_update', model.database.end_round, runner)
        runner.save_checkpoint = self._wrap('checkpoint',
                                            runner.save_checkpoint, runner)
        runner.train_loop.run_iter = self._wrap('batch',
                                                runner.train_loop.run_iter,
                                                runner)
        if runner.val_loop is not None:
            runner.val_loop.run = self._wrap('evaluation', runner.val_loop.run,
                                             runner)

    def after_train(self, runner) -> None:
        if self.fault is None:
            with open(self.record_file, 'w') as f:
                for event in self.events:
                    f.write(json.dumps(event) + '\n')

    def _wrap(self, phase: str, function, runner):

        def wrapped(*args, **kwargs):
            key = (phase, runner.epoch)
            index = self._counts.get(key, 0)
            self._counts[key] = index + 1
            # A checkpoint is named by its file: after a resume, a redone
            # evaluation may add a best checkpoint and shift the count.
            what = ''
            if phase == 'checkpoint':
                what = osp.basename(
                    kwargs.get('filename', args[1] if len(args) > 1 else ''))
            fault = self.fault
            if fault is not None and _matches(fault, phase, runner.epoch,
                                              index, what):
                _note_kill(runner.work_dir, fault)
                timer = threading.Timer(
                    fault['delay'],
                    lambda: os.kill(os.getpid(), signal.SIGKILL))
                timer.daemon = True
                timer.start()
            start = time.perf_counter()
            result = function(*args, **kwargs)
            self.events.append(
                [phase, key[1], index, time.perf_counter() - start, what])
            return result

        return wrapped


def _matches(fault: dict, phase: str, epoch: int, index: int,
             what: str) -> bool:
    if fault['phase'] != phase or fault['epoch'] != epoch:
        return False
    if phase == 'checkpoint':
        return fault['what'] == osp.basename(what)
    return fault['index'] == index


def _note_kill(work_dir: str, fault: dict) -> None:
    """What was armed, for the benchmark to read after the kill."""
    with open(osp.join(work_dir, 'fault_armed.json'), 'w') as f:
        json.dump(fault, f)
