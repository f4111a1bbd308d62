"""Layers point down: every import of ``mmqueryopt/``, walked with ``ast``.

A unit is a subpackage or top-level module of the package (``engine``,
``fileio``, ``compat``, ...; ``__init__`` is the package's own
``__init__.py``). A module may import units of its own layer or below,
never above, and no two units may import each other in a cycle. Imports
inside functions count as much as those at the top.
"""
import ast
import os
import os.path as osp
from typing import Dict, Iterator, List, NamedTuple, Set

import pytest

from conftest import REPO

# 0: the bottom (registration: our registries and our models in
# MMPretrain's model hub; file I/O; third-party workarounds);
# 1: the parts; 2: retrieval over them (and search backends); 3: runner
# glue, analyses and export; 4: the package's own __init__ and any public API.
LAYERS = {
    'registry': 0, 'model_index': 0, 'fileio': 0, 'version': 0, 'compat': 0,
    'models': 1, 'datasets': 1, 'evaluation': 1, 'converters': 1,
    'retrieval': 2,
    'engine': 3, 'analysis': 3, 'deployment': 3,
    '__init__': 4, 'apis': 4,
}


class Import(NamedTuple):
    path: str  # relative to the package's parent folder
    line: int
    unit: str  # the importing module's unit
    target: str  # the imported unit


def _module_name(root: str, path: str) -> str:
    parts = osp.relpath(path, root)[:-len('.py')].split(os.sep)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _unit(package: str, module: str) -> str:
    """The unit of a dotted module name inside ``package``."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def _targets(node: ast.AST, module: str, is_package: bool,
             package: str) -> List[str]:
    """Dotted names of what ``node`` imports from ``package``."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split('.')
            if not is_package:
                base = base[:-1]
            base = base[:len(base) - (node.level - 1)]
            origin = '.'.join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ''
        # `from pkg import sub` imports the unit `sub`; `from pkg.sub import
        # name` the unit of pkg.sub.
        names = ([f'{origin}.{alias.name}' for alias in node.names]
                 if origin == package else [origin])
    else:
        return []
    return [name for name in names
            if name == package or name.startswith(package + '.')]


def walk_imports(root: str, package: str) -> Iterator[Import]:
    """Every import of ``package`` by its own modules.

    Args:
        root (str): The folder that holds the package's folder.
        package (str): The package's name.

    Yields:
        Import: One per imported unit of each import statement.
    """
    for folder, dirs, files in os.walk(osp.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            module = _module_name(root, path)
            unit = _unit(package, module)
            with open(path, encoding='utf-8') as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                for target in _targets(node, module, name == '__init__.py',
                                       package):
                    yield Import(osp.relpath(path, root), node.lineno, unit,
                                 _unit(package, target))


def upward_imports(imports: List[Import],
                   layers: Dict[str, int]) -> List[str]:
    """The imports of a higher layer's unit, and of units with no layer."""
    found = []
    for imp in imports:
        for unit in (imp.unit, imp.target):
            if unit not in layers:
                found.append(f'{imp.path}:{imp.line}: unit {unit!r} has no '
                             f'layer (add it to LAYERS)')
        if layers.get(imp.target, 0) > layers.get(imp.unit, 0):
            found.append(
                f'{imp.path}:{imp.line}: {imp.unit} (layer '
                f'{layers[imp.unit]}) imports {imp.target} (layer '
                f'{layers[imp.target]})')
    return found


def unit_cycles(imports: List[Import]) -> List[List[str]]:
    """Cycles of units importing each other (each as a closed path)."""
    graph: Dict[str, Set[str]] = {}
    for imp in imports:
        if imp.target != imp.unit:
            graph.setdefault(imp.unit, set()).add(imp.target)
    cycles, done = [], set()

    def visit(unit: str, path: List[str]) -> None:
        if unit in path:
            cycle = path[path.index(unit):] + [unit]
            if frozenset(cycle) not in done:
                done.add(frozenset(cycle))
                cycles.append(cycle)
            return
        for nxt in sorted(graph.get(unit, ())):
            visit(nxt, path + [unit])

    for unit in sorted(graph):
        visit(unit, [])
    return cycles


def test_layers_point_down_and_have_no_cycles():
    imports = list(walk_imports(REPO, 'mmqueryopt'))
    # The walk sees the package's imports, at the top and inside functions.
    assert len(imports) > 100
    assert {imp.unit for imp in imports} >= {'engine', 'retrieval', 'models'}
    assert upward_imports(imports, LAYERS) == []
    assert unit_cycles(imports) == []


def _write(root, files: Dict[str, str]) -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_checker_finds_upward_imports_of_every_form(tmp_path):
    root = _write(tmp_path, {
        'pkg/__init__.py': 'from . import low, high\n',
        'pkg/low/__init__.py': 'from .a import f\n',
        'pkg/low/a.py': ('import os\n'
                         'def f():\n'
                         '    from ..high import g\n'),  # in a function
        'pkg/low/b.py': 'from pkg.high.c import g\n',  # absolute
        'pkg/low/c.py': 'import pkg.high\n',  # plain import
        'pkg/low/d.py': 'from pkg import high\n',  # the unit by name
        'pkg/low/e.py': 'from .. import high\n',  # relative, by name
        'pkg/low/f.py': 'from . import a\nfrom pkg.low import b\n',  # own
        'pkg/high/__init__.py': 'from ..low import f\n',  # down: fine
        'pkg/high/c.py': 'g = 1\n',
    })
    layers = {'low': 0, 'high': 1, '__init__': 2}
    found = upward_imports(list(walk_imports(root, 'pkg')), layers)
    assert sorted(f.split(':')[0] + ':' + f.split(':')[1]
                  for f in found) == [
        'pkg/low/a.py:3', 'pkg/low/b.py:1', 'pkg/low/c.py:1',
        'pkg/low/d.py:1', 'pkg/low/e.py:1']
    assert all('low (layer 0) imports high (layer 1)' in f for f in found)
    # A unit without a layer is reported, not assumed to be anywhere.
    found = upward_imports(list(walk_imports(root, 'pkg')),
                           {'low': 0, '__init__': 2})
    assert any("unit 'high' has no layer" in f for f in found)


def test_checker_finds_cycles_within_a_layer(tmp_path):
    root = _write(tmp_path, {
        'pkg/__init__.py': '',
        'pkg/a.py': 'from pkg import b\n',
        'pkg/b/__init__.py': 'from .x import y\n',
        'pkg/b/x.py': 'def y():\n    from ..c import z\n',
        'pkg/c.py': 'from .a import q\n',
        'pkg/d.py': 'from . import a\n',  # into the cycle, not part of it
    })
    imports = list(walk_imports(root, 'pkg'))
    assert upward_imports(imports, dict.fromkeys('abcd', 0)) == []
    assert unit_cycles(imports) == [['a', 'b', 'c', 'a']]


@pytest.mark.parametrize('source,expected', [
    ('from .. import registry', 'registry'),
    ('from ..registry import MODELS', 'registry'),
    ('from . import utils', 'engine'),
    ('from mmqueryopt import fileio', 'fileio'),
    ('import mmqueryopt', '__init__'),
    ('import numpy', None),
])
def test_relative_imports_resolve_to_their_unit(source, expected):
    node = ast.parse(source).body[0]
    targets = _targets(node, 'mmqueryopt.engine.hook', False, 'mmqueryopt')
    assert [_unit('mmqueryopt', t) for t in targets] == (
        [expected] if expected else [])
