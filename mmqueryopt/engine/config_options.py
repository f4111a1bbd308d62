"""Reading a config file and its ``--cfg-options``, with one-line errors.

MMEngine merges any override: a misspelt top-level key becomes a key that
nothing reads (``randomnes.seed=1`` runs with the default seed), and a
misspelt argument of a built type ends in a ``TypeError`` traceback after the
runner has logged its environment. Here every override whose key the config
does not have is checked before anything is built:

* a top-level key: refused, naming the closest existing key, unless the
  run means to add it (``new_keys=True``, the tools' ``--allow-new-keys``);
* a key of a dict with a ``type``: accepted when the registered type takes
  an argument of that name (or takes ``**kwargs`` that it does not simply
  hand to its parent class, where nobody can tell);
* a key of a dict the Runner reads without a ``type`` (``train_cfg``,
  ``randomness``, a dataloader, ...): accepted when what the Runner passes
  it to takes that argument;
* a key of any other dict: refused, naming the closest existing key.
"""
import ast
import difflib
import inspect
import os.path as osp
import textwrap
from typing import Callable, FrozenSet, Iterable, List, Optional, Union

from mmengine.config import Config

# The flag that lets an override add a key the config does not have.
NEW_KEYS_FLAG = '--allow-new-keys'

# Keys that MMEngine's builders read themselves before calling the type:
# merge and scope directives, a hook's priority, an optimizer wrapper's
# constructor arguments, a scheduler's epoch-to-iteration switch.
BUILDER_KEYS = frozenset({
    'type', '_scope_', '_delete_', 'priority', 'constructor',
    'paramwise_cfg', 'convert_to_iter_based'
})


class ConfigError(ValueError):
    """A config file or an override that cannot be used; the message is one
    line naming the file or the key."""


def read_config(path: str,
                options: Optional[dict] = None,
                new_keys: bool = False) -> Config:
    """Read a config file and merge ``--cfg-options`` into it.

    Args:
        path (str): The config file.
        options (dict, optional): Dotted keys to values, as parsed by
            MMEngine's ``DictAction``.
        new_keys (bool): Accept overrides that add top-level keys (and
            skip the other checks of keys the config does not have).
            Defaults to False.

    Returns:
        mmengine.Config: The config with the overrides merged.

    Raises:
        ConfigError: The file is missing, does not parse (the message gives
            the line) or fails to run, or an override names a key that
            nothing would read.
    """
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    if path.endswith('.py'):
        _check_syntax(path)
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # the file's own code, or one of its bases
        raise ConfigError(
            f'cannot read config {path}: {type(err).__name__}: '
            f'{_first_line(err)}') from None
    if options:
        if not new_keys:
            check_overrides(cfg, options)
        try:
            cfg.merge_from_dict(options)
        except (KeyError, TypeError) as err:
            raise ConfigError(
                f'--cfg-options: {_first_line(err)}') from None
    return cfg


def check_overrides(cfg: Config, options: dict) -> None:
    """Refuse overrides whose key nothing would read (see the module doc).

    Args:
        cfg (mmengine.Config): The config, before the overrides.
        options (dict): Dotted keys to values.

    Raises:
        ConfigError: The first override at fault, with the closest key or
            argument that exists.
    """
    for key in options:
        node = cfg._cfg_dict
        parts = key.split('.')
        for depth, part in enumerate(parts):
            where = '.'.join(parts[:depth]) or 'the config'
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f'--cfg-options {key}: {where} is a list of '
                        f'{len(node)}; expected an index 0..{len(node) - 1} '
                        f'after it, got {part!r}')
                node = node[int(part)]
            elif not isinstance(node, dict):
                raise ConfigError(
                    f'--cfg-options {key}: {where} is {node!r}, which has '
                    f'no keys')
            elif part in node:
                node = node[part]
            else:
                _check_new_key(key, parts[:depth], node, part)
                break


def accepted_arguments(target: Callable) -> Optional[FrozenSet[str]]:
    """The keyword arguments that calling ``target`` accepts.

    A class's ``**kwargs`` that its ``__init__`` only hands on to
    ``super().__init__`` are followed up the MRO (plus the keys it takes
    out of them by name), as MMPretrain's backbones and datasets do.

    Args:
        target (callable): A class or a function.

    Returns:
        frozenset[str] | None: The names; None when it cannot be told
        (``**kwargs`` used otherwise, no Python signature).
    """
    if not inspect.isclass(target):
        params = _parameters(target)
        if params is None or _var_keyword(params):
            return None
        return frozenset(_named(params))
    names = set()
    for klass in target.__mro__:
        init = vars(klass).get('__init__')
        if init is None:
            continue
        if klass is object:
            break
        params = _parameters(init)
        if params is None:
            return None
        names |= _named(params)
        var_kw = _var_keyword(params)
        if var_kw is None:
            break
        taken = _kwargs_handed_to_super(init, var_kw)
        if taken is None:
            return None
        names |= taken
    return frozenset(names)


def _parameters(func: Callable) -> Optional[list]:
    try:
        return list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None


def _named(params: list) -> set:
    return {
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    } - {'self'}


def _var_keyword(params: list) -> Optional[str]:
    return next((p.name for p in params if p.kind == p.VAR_KEYWORD), None)


def _kwargs_handed_to_super(func: Callable,
                            var_kw: str) -> Optional[FrozenSet[str]]:
    """The keys ``func`` reads from ``**var_kw`` by name when its only other
    use of them is ``super().__init__(..., **var_kw)``; else None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    spreads, to_super, taken = 0, 0, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if any(kw.arg is None and isinstance(kw.value, ast.Name)
                   and kw.value.id == var_kw for kw in node.keywords):
                spreads += 1
                to_super += _is_super_init(node.func)
            func_node = node.func
            if (isinstance(func_node, ast.Attribute)
                    and func_node.attr in ('pop', 'get', 'setdefault')
                    and isinstance(func_node.value, ast.Name)
                    and func_node.value.id == var_kw and node.args
                    and isinstance(node.args[0], ast.Constant)):
                taken.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript)
              and isinstance(node.value, ast.Name)
              and node.value.id == var_kw
              and isinstance(node.slice, ast.Constant)):
            taken.add(node.slice.value)
    if spreads != 1 or to_super != 1:
        return None
    return frozenset(str(name) for name in taken)


def _is_super_init(func_node: ast.expr) -> bool:
    """Whether a call's function is ``super(...).__init__``."""
    return (isinstance(func_node, ast.Attribute)
            and func_node.attr == '__init__'
            and isinstance(func_node.value, ast.Call)
            and isinstance(func_node.value.func, ast.Name)
            and func_node.value.func.id == 'super')


def _check_new_key(key: str, parent_path: List[str], parent: dict,
                   name: str) -> None:
    """Refuse ``name``, new in ``parent``, unless what reads ``parent``
    takes it."""
    if not parent_path:
        raise ConfigError(
            f'--cfg-options {key}: the config has no key {name!r}'
            f'{_closest(name, parent)}; to add it anyway, pass '
            f'{NEW_KEYS_FLAG}')
    where = '.'.join(parent_path)
    runner_reads = where in _RUNNER_READS
    if 'type' not in parent and not runner_reads:
        raise ConfigError(
            f'--cfg-options {key}: {where} has no key {name!r}'
            f'{_closest(name, parent)}; to add it anyway, pass '
            f'{NEW_KEYS_FLAG}')
    if 'type' in parent:
        targets, label = _registered(parent['type']), str(parent['type'])
        if not targets:
            return  # a type no registry knows: its build will say so
        accepted = set(BUILDER_KEYS)
    else:
        target, extra = _RUNNER_READS[where](parent)
        targets = [target]
        label = f'{where} (read by {target.__qualname__})'
        accepted = set(BUILDER_KEYS) | set(extra)
    if name in accepted:
        return
    for target in targets:
        names = accepted_arguments(target)
        if names is None or name in names:
            return
        accepted |= names
    raise ConfigError(f'--cfg-options {key}: '
                      f'{_no_argument(label, name, accepted - BUILDER_KEYS)}')


def unknown_argument(target: Callable, name: str) -> str:
    """The message for a build of ``target`` that got a keyword argument
    it does not take (a key of the config file itself, which
    :func:`check_overrides` does not see).

    Args:
        target (callable): The registered class or function.
        name (str): The keyword.

    Returns:
        str: One line naming both and the closest argument it takes.
    """
    label = getattr(target, '__name__', repr(target))
    accepted = accepted_arguments(target) or ()
    return (f'{_no_argument(label, name, accepted)} (a key of its dict in '
            'the config or --cfg-options)')


def _no_argument(label: str, name: str, accepted: Iterable[str]) -> str:
    return f'{label} takes no argument {name!r}{_closest(name, accepted)}'


def _registered(type_) -> list:
    """What a ``type`` names in any registry of the ``mmqueryopt`` scope
    (which reaches MMPretrain's and MMEngine's through its parents)."""
    if not isinstance(type_, str):
        return [type_]
    from mmengine.registry import Registry

    from mmqueryopt import registry
    targets = []
    for reg in vars(registry).values():
        if isinstance(reg, Registry):
            found = reg.get(type_)
            if found is not None and found not in targets:
                targets.append(found)
    return targets


def _train_loop(cfg: dict) -> tuple:
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    loop = (EpochBasedTrainLoop
            if cfg.get('by_epoch', True) else IterBasedTrainLoop)
    return loop, {'by_epoch'}


def _reads(name: str, extra: Iterable[str] = ()) -> Callable:
    """The reader of ``mmengine.runner.<name>`` (a dotted path)."""

    def resolve(cfg: dict) -> tuple:
        import mmengine.runner
        target = mmengine.runner
        for part in name.split('.'):
            target = getattr(target, part)
        return target, frozenset(extra)

    return resolve


def _dataloader(cfg: dict) -> tuple:
    from torch.utils.data import DataLoader

    # Runner.build_dataloader takes these two out before DataLoader.
    return DataLoader, {'num_batch_per_epoch', 'disable_subprocess_warning'}


def _optim_wrapper(cfg: dict) -> tuple:
    from mmengine.optim import OptimWrapper
    return OptimWrapper, ()


def _env(cfg: dict) -> tuple:

    def setup_env(cudnn_benchmark=False, mp_cfg=None, dist_cfg=None,
                  resource_limit=4096):
        """The keys of ``env_cfg`` that the Runner's ``setup_env`` reads."""

    setup_env.__qualname__ = 'Runner.setup_env'
    return setup_env, ()


def _mp(cfg: dict) -> tuple:
    from mmengine.utils.dl_utils import set_multi_processing

    # The Runner passes 'distributed' itself.
    return set_multi_processing, ()


def _dist(cfg: dict) -> tuple:
    from torch.distributed import init_process_group

    # MMEngine's init_dist reads these and passes the rest on to torch.
    return init_process_group, {'init_backend', 'port'}


# The untyped dicts that the Runner passes on: each gives what the Runner
# calls with the dict and the keys it reads itself.
_RUNNER_READS = {
    'env_cfg.mp_cfg': _mp,
    'env_cfg.dist_cfg': _dist,
    'train_cfg': _train_loop,
    'val_cfg': _reads('ValLoop'),
    'test_cfg': _reads('TestLoop'),
    'randomness': _reads('Runner.set_randomness'),
    'optim_wrapper': _optim_wrapper,
    'env_cfg': _env,
    'train_dataloader': _dataloader,
    'val_dataloader': _dataloader,
    'test_dataloader': _dataloader,
}


def _closest(name: str, candidates: Union[dict, Iterable[str]]) -> str:
    """``' (closest: 'x')'`` or ``''`` when nothing is close."""
    match = difflib.get_close_matches(
        name, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f' (closest: {match[0]!r})' if match else ''


def _check_syntax(path: str) -> None:
    """Refuse a Python config that does not parse, naming the line."""
    try:
        with open(path, encoding='utf-8') as f:
            ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        raise ConfigError(
            f'config {path}, line {err.lineno}: {err.msg}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'cannot read config {path}: {err}') from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().strip('"\'')
    return text.splitlines()[0] if text else type(err).__name__
