"""Registries of mmqueryopt, children of MMPretrain's.

Every registry of MMPretrain gets a child under scope ``mmqueryopt`` so that a
config with ``default_scope='mmqueryopt'`` can name our types and any
MMPretrain/MMEngine type side by side (``type='ResNet'`` next to
``type='QueryHashHead'``). Our registries build in our scope whatever the
caller's default scope: a model named ``'mmqueryopt.HashRetriever'`` from an
MMPretrain config (scope ``mmpretrain``) builds its parts from their bare
names too (docs/registry_and_scopes.md).
"""
import functools
import importlib
import pkgutil
from types import ModuleType
from typing import Callable, Dict

from mmengine import registry as engine
from mmengine.registry import DefaultScope, Registry
from mmpretrain import registry as pretrain
from mmpretrain.utils import register_all_modules

# A child lookup does not trigger the parent's lazy import, so MMPretrain's
# modules must be registered before any config asks for ``ResNet``.
register_all_modules(init_default_scope=False)


def _in_our_scope(build_func: Callable) -> Callable:
    """``build_func`` run with ``mmqueryopt`` as the default scope.

    MMEngine resolves every bare ``type`` against the registry of the
    current default scope, so under MMPretrain's scope the nested parts of
    our models (``SubtleFeatureNeck``...) would be looked up in MMPretrain's
    registry, which does not hold them. Our scope sees MMPretrain's types
    too (through the parent), so nothing is lost; ``_scope_`` in a config
    still wins.
    """

    @functools.wraps(build_func)
    def build(cfg, registry, *args, **kwargs):
        with DefaultScope.overwrite_default_scope('mmqueryopt'):
            return build_func(cfg, registry, *args, **kwargs)

    return build


def _child(parent: Registry, *locations: str) -> Registry:
    return Registry(
        parent.name, parent=parent, scope='mmqueryopt',
        locations=list(locations),
        build_func=_in_our_scope(parent.build_func))


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


def import_submodules(package: str) -> Dict[str, ModuleType]:
    """Import every module of ``package``, so that the types they register
    exist: a new part of a method is a new file, with no ``__init__`` edit
    (docs/adding_a_method.md).

    Args:
        package (str): A package's dotted name, e.g. ``__name__`` in its
            ``__init__``.

    Returns:
        dict[str, ModuleType]: The modules by their short names, sorted.
    """
    path = importlib.import_module(package).__path__
    return {
        info.name: importlib.import_module(f'{package}.{info.name}')
        for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name)
    }
