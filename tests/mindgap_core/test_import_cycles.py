"""No import cycle between the modules of ``mindgap_core``.

The import graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` and
``from ... import`` statement counts, module-level or inside a function, except those under
``if TYPE_CHECKING:`` (never executed). ``from P import name`` depends on the submodule ``P.name`` when
there is one, else on the package ``P`` itself, i.e. on whatever ``P/__init__.py`` re-exports. Parent
packages a module lives in are not edges (Python initialises them first, whatever the module does).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "mindgap_core"


def module_files(root: Path = REPO / PACKAGE) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the package (``__init__`` named as its package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that module ``name`` (file ``path``) imports, at any depth of its code."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative, so deep graphs cannot hit the recursion limit
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def test_mindgap_core_has_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (each a group of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


# --- the walker itself ----------------------------------------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    root = tmp_path / PACKAGE
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_walker_sees_function_level_relative_and_reexported_imports(tmp_path: Path) -> None:
    graph = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "from mindgap_core.a.b import thing\n",
            "a/b.py": "def f():\n    from mindgap_core.c import helper\n",
            "a/d.py": "from . import b\nfrom .b import thing\nimport mindgap_core.c\n",
            "c.py": "from mindgap_core.a import thing  # the package: its __init__ re-exports b\n",
            "e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mindgap_core import c\n",
        },
    )
    assert graph["mindgap_core.a"] == {"mindgap_core.a.b"}
    assert graph["mindgap_core.a.b"] == {"mindgap_core.c"}
    assert graph["mindgap_core.a.d"] == {"mindgap_core.a.b", "mindgap_core.c"}
    assert graph["mindgap_core.c"] == {"mindgap_core.a"}
    assert graph["mindgap_core.e"] == set()
    # b -> c (inside a function) -> a (re-export) -> b
    assert find_cycles(graph) == [["mindgap_core.a", "mindgap_core.a.b", "mindgap_core.c"]]


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"x": set(), "y": {"x"}}, []),
        ({"x": {"y"}, "y": {"x"}, "z": {"x"}}, [["x", "y"]]),
        ({"p": {"q"}, "q": {"r"}, "r": {"p"}, "s": {"s"}}, [["p", "q", "r"]]),
    ],
)
def test_find_cycles(graph: dict[str, set[str]], cycles: list[list[str]]) -> None:
    assert find_cycles(graph) == cycles
