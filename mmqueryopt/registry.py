"""Registries of mmqueryopt, children of MMPretrain's.

Every registry of MMPretrain gets a child under scope ``mmqueryopt`` so that a
config with ``default_scope='mmqueryopt'`` can name our types and any
MMPretrain/MMEngine type side by side (``type='ResNet'`` next to
``type='QueryHashHead'``).
"""
from mmengine import registry as engine
from mmengine.registry import Registry
from mmpretrain import registry as pretrain
from mmpretrain.utils import register_all_modules

# A child lookup does not trigger the parent's lazy import, so MMPretrain's
# modules must be registered before any config asks for ``ResNet``.
register_all_modules(init_default_scope=False)


def _child(parent: Registry, *locations: str) -> Registry:
    return Registry(
        parent.name, parent=parent, scope='mmqueryopt',
        locations=list(locations))


RUNNERS = _child(pretrain.RUNNERS)
RUNNER_CONSTRUCTORS = _child(pretrain.RUNNER_CONSTRUCTORS)
LOOPS = _child(pretrain.LOOPS)
HOOKS = _child(pretrain.HOOKS, 'mmqueryopt.engine')
LOG_PROCESSORS = _child(pretrain.LOG_PROCESSORS)
OPTIMIZERS = _child(pretrain.OPTIMIZERS)
OPTIM_WRAPPERS = _child(pretrain.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(pretrain.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(pretrain.PARAM_SCHEDULERS)
DATASETS = _child(pretrain.DATASETS, 'mmqueryopt.datasets')
DATA_SAMPLERS = _child(pretrain.DATA_SAMPLERS, 'mmqueryopt.engine')
TRANSFORMS = _child(pretrain.TRANSFORMS, 'mmqueryopt.datasets')
MODELS = _child(pretrain.MODELS, 'mmqueryopt.models')
MODEL_WRAPPERS = _child(pretrain.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(pretrain.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child(pretrain.BATCH_AUGMENTS)
TASK_UTILS = _child(pretrain.TASK_UTILS)
TOKENIZER = _child(pretrain.TOKENIZER)
METRICS = _child(pretrain.METRICS, 'mmqueryopt.evaluation')
EVALUATORS = _child(pretrain.EVALUATORS)
VISUALIZERS = _child(pretrain.VISUALIZERS)
VISBACKENDS = _child(pretrain.VISBACKENDS)
# MMPretrain has none of its own; dataloaders look up worker_init_fn here.
FUNCTIONS = _child(engine.FUNCTIONS, 'mmqueryopt.engine')
