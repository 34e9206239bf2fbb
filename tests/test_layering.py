"""The runtime's layering (issue 13; docs/architecture.md): no module reaches into another's
underscore names, and the modules' top-level imports form no cycle.

Both are read from the source with ``ast``: a module may use its own private names
(``self._x``, or any ``_x`` it defines), never another module's (``butler._plan``,
``registry._rows``, ``from .normalize import _to_datetime``). Underscore *modules*
(``_cli_common``, ``registry/_schema``) are private to their package and may be imported
inside it; the standard library's underscore names are not ours to judge.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runtime" / "butler"
#: Underscore names of other libraries that the runtime uses knowingly.
FOREIGN = {"_SubParsersAction", "_exit"}
#: Variables that by convention hold another layer's object -> the module defining it.
LAYERS = {
    "butler": "butler.py",
    "owner": "butler.py",
    "member": "butler.py",
    "holder": "butler.py",
    "registry": "registry/_registry.py",
    "storage": "storage.py",
    "datastore": "datastore/base.py",
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _own_names(tree: ast.AST) -> set[str]:
    """Every name a module defines: functions, classes, attributes it assigns, variables."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in FOREIGN


def _is_module(name: str) -> bool:
    """Whether ``name`` is a module of the package (a private module may be imported)."""
    return any((folder / f"{name}.py").exists() for folder in (PACKAGE, *PACKAGE.iterdir()))


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _own_names(tree)
    where = path.relative_to(PACKAGE)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            # another object's private name is fine only if this module defines that name
            # (another instance of its own class), and never on another layer's objects
            layer = LAYERS.get(ast.unparse(receiver).split(".")[-1].lstrip("_"))
            other_layer = layer is not None and layer != where.as_posix()
            if node.attr not in own or other_layer:
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name) and not _is_module(alias.name):
                    found.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
    return found


def test_no_module_uses_another_modules_underscore_names() -> None:
    found = [line for path in _modules() for line in _violations(path)]
    assert found == [], "private names used across modules:\n" + "\n".join(found)


def _top_level_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it is imported (not under TYPE_CHECKING,
    not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    if path.name != "__init__.py":
        package = _module_name(path).rsplit(".", 1)[0]
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            imported.add(target)
            for alias in node.names:  # "from . import x" imports a module
                if (PACKAGE.parent / target.replace(".", "/") / f"{alias.name}.py").exists():
                    imported.add(f"{target}.{alias.name}")
    return imported


def test_the_modules_top_level_imports_form_no_cycle() -> None:
    graph = {_module_name(p): _top_level_imports(p) for p in _modules()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1 and target != name:
                cycle = stack[stack.index(target) :]
                if not all(_is_package(m) for m in cycle):
                    pytest.fail("import cycle: " + " -> ".join([*cycle, target]))
            elif target not in state and target in graph:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


@pytest.mark.parametrize("name", ["butler.butler", "butler.chain", "butler.calibrations"])
def test_each_layer_imports_alone(name: str) -> None:
    assert importlib.import_module(name) is not None


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start``'s top-level imports bring in, transitively."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _local_imports(path: Path) -> list[tuple[int, str]]:
    """The package modules ``path`` imports inside functions: (line, module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (_module_name(path))
    )
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                found.append((node.lineno, ".".join([*base, node.module])))
    return found


#: The one sanctioned function-local import that reaches back: ``Butler(URL)`` returns the
#: client of a served repository, a subclass of ``Butler`` (so mypy holds it to Butler's
#: signatures), imported only when a URL is opened so that local use never loads httpx.
SANCTIONED = {("butler.butler", "butler.remote.client")}


def test_no_function_local_import_dodges_a_cycle() -> None:
    """A module imported inside a function must not import the importing module back
    (at its top level, transitively): that would be a cycle hidden from the test above."""
    graph = {_module_name(p): _top_level_imports(p) for p in _modules()}
    found = []
    for path in _modules():
        name = _module_name(path)
        for line, target in _local_imports(path):
            if (name, target) in SANCTIONED:
                continue
            if name in _reach(graph, target):
                found.append(f"{path.relative_to(PACKAGE)}:{line}: imports {target} in a function")
    assert found == [], "function-local imports hiding a cycle:\n" + "\n".join(found)


def test_the_datastores_and_the_registry_are_below_the_butler() -> None:
    """Neither a back-end nor the registry imports the Butler, the features or each other."""
    graph = {_module_name(p): _top_level_imports(p) for p in _modules()}
    above = {"butler.butler", "butler.chain", "butler.calibrations", "butler.ingest"}
    for name in graph:
        reached = _reach(graph, name)
        if name.startswith("butler.datastore"):
            assert not reached & above, f"{name} imports {sorted(reached & above)}"
        if name.startswith("butler.registry"):
            assert not any(m.startswith("butler.datastore") for m in reached), name
            assert not reached & above, f"{name} imports {sorted(reached & above)}"
