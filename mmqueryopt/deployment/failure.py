"""Which module an ONNX export failed in.

An exporter's error names an operator or a traced line, rarely the module a
user configured. Two ways find it:

* :class:`ModuleStack` records the modules being run while the exporter
  traces: an error raised inside a forward leaves the stack as it was, its
  last entry the innermost module.
* :func:`innermost_failing` exports submodules on their own, with the
  inputs each received in a plain forward, and descends into the first
  child that fails: for an error raised after tracing (an operator without
  an ONNX conversion), when no forward is running any more.
"""
import inspect
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils._pytree import tree_leaves


class ModuleStack:
    """The submodules of ``root`` whose forward is running, outermost
    first, kept up to date by hooks while the context is active.

    Each forward of ``root`` (an exporter may trace more than once) starts
    a new stack; an error leaves it as it was when raised.

    Args:
        root (nn.Module): The exported module.
    """

    def __init__(self, root: nn.Module):
        self.root = root
        self.names: List[str] = []
        self._handles = []

    def __enter__(self) -> 'ModuleStack':
        for name, module in self.root.named_modules():
            self._handles.append(
                module.register_forward_pre_hook(self._push(name)))
            self._handles.append(module.register_forward_hook(self._pop))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _push(self, name: str) -> Callable:

        def hook(module, args):
            if not name:
                self.names = []
            self.names.append(name)

        return hook

    def _pop(self, module, args, output) -> None:
        if self.names:
            self.names.pop()

    def innermost(self) -> Optional[str]:
        """The innermost running submodule (not ``root``), or None."""
        inner = [name for name in self.names if name]
        return inner[-1] if inner else None


def record_inputs(root: nn.Module, *args) -> Dict[str, tuple]:
    """Run ``root(*args)`` and keep each submodule's first call.

    Args:
        root (nn.Module): The module.
        *args: Its inputs.

    Returns:
        dict[str, tuple]: ``name -> (args, kwargs)`` of every submodule
        that ran.
    """
    calls: Dict[str, tuple] = {}
    handles = []
    for name, module in root.named_modules():
        if not name:
            continue

        def hook(module, args, kwargs, name=name):
            calls.setdefault(name, (args, kwargs))

        handles.append(
            module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            root(*args)
    finally:
        for handle in handles:
            handle.remove()
    return calls


class _Call(nn.Module):
    """A submodule called with fixed keyword arguments, its outputs
    flattened to the tuple of tensors an exporter accepts."""

    def __init__(self, module: nn.Module, kwargs: dict):
        super().__init__()
        self.module = module
        self.kwargs = kwargs

    def forward(self, *args):
        leaves = tree_leaves(self.module(*args, **self.kwargs))
        return tuple(leaf for leaf in leaves if isinstance(leaf, torch.Tensor))


def innermost_failing(root: nn.Module, calls: Dict[str, tuple],
                      exports: Callable[[nn.Module, tuple], bool]
                      ) -> Optional[str]:
    """The deepest submodule that fails to export on its own.

    Args:
        root (nn.Module): The module whose export failed.
        calls (dict): :func:`record_inputs` of ``root``.
        exports (Callable): ``exports(module, args)`` is True when the
            module exports with those inputs.

    Returns:
        str | None: Its name, or None when every called child of ``root``
        exports (the failure lies in ``root``'s own code).
    """
    found = None
    candidates = _called_children(root, '', calls)
    while candidates:
        failing = None
        for name, child in candidates:
            args, kwargs = calls[name]
            if not exports(_Call(child, kwargs), args):
                failing = name, child
                break
        if failing is None:
            break
        found = failing[0]
        candidates = _called_children(failing[1], found + '.', calls)
    return found


def _called_children(parent: nn.Module, prefix: str,
                     calls: Dict[str, tuple]) -> List[Tuple[str, nn.Module]]:
    """The children of ``parent`` that were called, in order; a child used
    only through another method (``model.extract_feat``) stands for its
    own called children."""
    found = []
    for child_name, child in parent.named_children():
        name = prefix + child_name
        if name in calls:
            found.append((name, child))
        elif any(called.startswith(name + '.') for called in calls):
            found.extend(_called_children(child, name + '.', calls))
    return found


def module_at(root: nn.Module, filename: str, lineno: int) -> Optional[str]:
    """The innermost submodule whose class's ``forward`` holds a line.

    Args:
        root (nn.Module): The exported module.
        filename (str): A source file, e.g. of a warning.
        lineno (int): Its line.

    Returns:
        str | None: The submodule's name (the longest when several match).
    """
    found = []
    for name, module in root.named_modules():
        forward = type(module).forward
        try:
            source = inspect.getsourcefile(forward)
            lines, start = inspect.getsourcelines(forward)
        except (OSError, TypeError):
            continue
        if (source and osp.abspath(source) == osp.abspath(filename)
                and start <= lineno < start + len(lines)):
            found.append(name)
    return max(found, key=lambda name: name.count('.') + bool(name),
               default=None) or None


def describe(root: nn.Module, name: str, strip: str = '') -> str:
    """``'<name>' (<Class>)``, naming too the innermost enclosing module
    that is not one of torch's own layers when ``name`` is one (a
    ``Linear`` says little; the configured module holding it does).

    Args:
        root (nn.Module): The exported module.
        name (str): A submodule's name in ``root``.
        strip (str): A prefix to drop from names (the wrapper's attribute
            holding the user's model, e.g. ``'model.'``).

    Returns:
        str: E.g. ``"'neck.attn.out_proj' (Linear) in 'neck.attn'
        (ChannelTransformer)"``.
    """
    def show(path: str) -> str:
        module = root.get_submodule(path)
        shown = path[len(strip):] if path.startswith(strip) else path
        return f"'{shown}' ({type(module).__name__})"

    configured = _innermost_configured(root, name, strip)
    if configured is None or configured == name:
        return show(name)
    return f'{show(name)} in {show(configured)}'


def _innermost_configured(root: nn.Module, name: str,
                          strip: str) -> Optional[str]:
    """The innermost of ``name`` and its enclosing modules below the
    user's model whose class is not torch's."""
    parts = name.split('.')
    for end in range(len(parts), 0, -1):
        path = '.'.join(parts[:end])
        if not path.startswith(strip):
            return None
        package = type(root.get_submodule(path)).__module__.split('.')[0]
        if package != 'torch':
            return path
    return None


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an error's message, shortened.

    Args:
        error (BaseException): The error.
        limit (int): Longest kept length.

    Returns:
        str: ``<Type>: <line>``.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = lines[0] if lines else ''
    if len(line) > limit:
        line = line[:limit - 3] + '...'
    return f'{type(error).__name__}: {line}' if line else type(error).__name__
