"""Hook that keeps the config's parameter schedule when a run resumes."""
import copy
import warnings
from types import SimpleNamespace
from typing import Dict, List

from mmengine.hooks import Hook
from mmengine.optim import _ParamScheduler

from mmqueryopt.registry import HOOKS

# A scheduler's progress, which a resume must take from the checkpoint;
# every other attribute is a setting of the schedule.
_PROGRESS = ('last_step', '_global_step', '_last_value', 'base_values')


@HOOKS.register_module()
class ResumeScheduleHook(Hook):
    """Resume with the config's lr and momentum schedule, saying what changed.

    MMEngine restores parameter schedulers whole from a checkpoint, settings
    included: a run first trained to 15 epochs (``--cfg-options
    train_cfg.max_epochs=15``) and resumed with the config's 30 keeps the
    first run's ``end=15`` (which defaults to ``max_epochs``) and silently
    never takes its lr drop at 24; changed milestones are likewise ignored.

    This hook reads the config's schedulers before the checkpoint loads.
    After a resume, when any setting differs it puts the config's settings
    back, sets each scheduled value (lr, momentum) to what the config's
    schedule gives at the resumed step (replayed from the run's initial
    values, each scheduler in turn: exact for a single scheduler and for
    schedules whose factors multiply, such as warm-up then steps), and warns
    with every key that changed. A resume with an unchanged schedule is left
    exactly as MMEngine restored it.
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._config_states: Dict[str, List[dict]] = {}

    def before_run(self, runner) -> None:
        self._config_states = {
            name: [copy.deepcopy(s.state_dict()) for s in schedulers]
            for name, schedulers in _scheduler_lists(runner).items()
        }

    def before_train(self, runner) -> None:
        if runner.iter == 0:
            return
        changes = []
        for name, schedulers in _scheduler_lists(runner).items():
            config_states = self._config_states.get(name, [])
            if len(config_states) != len(schedulers):
                raise ValueError(
                    f'the checkpoint has {len(schedulers)} parameter '
                    f'schedulers{_label(name)}, the config '
                    f'{len(config_states)}: param_scheduler differs too '
                    f'much to resume; start from its weights with load_from')
            changed = _changed_settings(schedulers, config_states, name)
            if changed:
                changes += changed + _apply_config_schedule(
                    schedulers, config_states)
        if changes:
            runner.logger.warning(
                f'Resuming with another parameter schedule than the '
                f'checkpoint\'s; from epoch {runner.epoch + 1} on the '
                f'config\'s applies (checkpoint -> config): ' +
                '; '.join(changes))


def _scheduler_lists(runner) -> Dict[str, list]:
    """Built schedulers by optimizer name ('' for one optimizer); none
    outside training, where they stay configs."""
    schedulers = runner.param_schedulers
    if isinstance(schedulers, list):
        lists = {'': schedulers}
    elif isinstance(schedulers, dict) and all(
            isinstance(group, list) for group in schedulers.values()):
        lists = dict(schedulers)
    else:  # None, or a scheduler's config
        return {}
    if not all(isinstance(s, _ParamScheduler)
               for group in lists.values() for s in group):
        return {}
    return lists


def _label(name: str) -> str:
    return f' for {name}' if name else ''


def _changed_settings(schedulers: list, config_states: List[dict],
                      name: str) -> List[str]:
    changed = []
    for index, (scheduler, config) in enumerate(
            zip(schedulers, config_states)):
        loaded = scheduler.state_dict()
        for key in sorted(set(loaded) | set(config)):
            if key in _PROGRESS:
                continue
            if loaded.get(key) != config.get(key):
                changed.append(
                    f'param_scheduler[{index}]{_label(name)} '
                    f'({type(scheduler).__name__}).{key}: '
                    f'{loaded.get(key)} -> {config.get(key)}')
    return changed


def _apply_config_schedule(schedulers: list,
                           config_states: List[dict]) -> List[str]:
    """Give ``schedulers`` the config's settings and the values its schedule
    reaches at their current step; returns the changed values."""
    optimizer = schedulers[0].optimizer
    # Schedulers only read and write param_groups: a stand-in optimizer
    # replays them without touching the real one.
    replay = SimpleNamespace(
        param_groups=[{k: v for k, v in group.items() if k != 'params'}
                      for group in optimizer.param_groups],
        step=lambda: None, _global_step=0)
    replicas = []
    for scheduler, config in zip(schedulers, config_states):
        replica = copy.copy(scheduler)
        replica.load_state_dict(copy.deepcopy(config))
        replica.optimizer = replay
        # Start from the run's initial values, before the construction step.
        replica.base_values = list(scheduler.base_values)
        replica.last_step = replica._global_step = -1
        for group, value in zip(replay.param_groups, scheduler.base_values):
            group[scheduler.param_name] = value
        replicas.append(replica)
    with warnings.catch_warnings():
        # Stepping without optimizer steps is the point of a replay.
        warnings.simplefilter('ignore')
        for scheduler, replica in zip(schedulers, replicas):
            while replica._global_step < scheduler._global_step:
                replica.step()
    before = {
        s.param_name: [group[s.param_name] for group in optimizer.param_groups]
        for s in schedulers
    }
    for scheduler, replica in zip(schedulers, replicas):
        # state_dict leaves out the optimizer, so the real one stays.
        scheduler.load_state_dict(replica.state_dict())
    changed = []
    for param_name, old in before.items():
        new = [group[param_name] for group in replay.param_groups]
        for group, value in zip(optimizer.param_groups, new):
            group[param_name] = value
        if new != old:
            changed.append(f'{param_name}: {old} -> {new}')
    return changed
