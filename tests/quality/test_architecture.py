"""The package's shape: no import cycle among certfleet's modules, and no module over 500 lines.

Imports are read with ``ast``, not by importing: top-level imports, imports under ``if TYPE_CHECKING:`` and imports
inside functions all count, since each is an edge a reader has to follow and a cycle waiting for the day it runs.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "constructs" / "certfleet"
MAX_LINES = 500


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name (a package by its own name, for its __init__)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file: for ``from a import b``, ``a.b`` when
    that is a module, else ``a``. Importing a submodule is not an edge to its parent packages (Python runs their
    ``__init__`` first, but that is the package's own business, not a dependency of the importer)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: "." is the module's package, ".." its parent
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (see ``imports_of``)."""
    modules = module_names(root)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            if targets:
                target = targets.pop(0)
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, sorted(graph.get(target, ()))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def a_path_around(component: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """One import chain that closes the cycle through ``component``'s first module, for the failure message."""
    start = component[0]
    members = set(component)
    trail = [start]
    seen = {start}
    while True:
        here = trail[-1]
        if start in graph[here] and len(trail) > 1:
            return [*trail, start]
        step = next((t for t in sorted(graph[here]) if t in members and t not in seen), None)
        if step is None:  # the shortest way back exists inside an SCC; this walk only has to name one
            return [*trail, next(t for t in sorted(graph[here]) if t in members)]
        trail.append(step)
        seen.add(step)


def test_no_import_cycle_among_certfleet_modules() -> None:
    graph = import_graph(PACKAGE)
    found = cycles(graph)
    described = [" -> ".join(a_path_around(c, graph)) + f"  (cycle of {len(c)}: {', '.join(c)})" for c in found]
    assert found == [], "import cycles (top-level, TYPE_CHECKING and function-level imports all count):\n" + \
        "\n".join(described)


def test_no_module_over_500_lines() -> None:
    sizes = {module: len(path.read_text().splitlines()) for module, path in module_names(PACKAGE).items()}
    over = {module: lines for module, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: split each into cohesive modules: {over}"


# ------------------------------------------------------------------ the checker itself, on a package made here
def _package(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_checker_sees_type_checking_function_level_and_relative_imports(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "from pkg.a import A\n",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\nA = 1\n",
        "b.py": "def f():\n    from .sub import c\n    return c\nB = 2\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..a import A\n",
        "sub/d.py": "import pkg.sub.c\nfrom pkg import a\n",
        "leaf.py": "import os\nfrom pkg.sub import d\n",
    })
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.sub.c"}, "pkg.sub": set(), "pkg.sub.c": {"pkg.a"},
        "pkg.sub.d": {"pkg.sub.c", "pkg.a"}, "pkg.leaf": {"pkg.sub.d"},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert a_path_around(["pkg.a", "pkg.b", "pkg.sub.c"], graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_the_checker_passes_a_package_without_cycles(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "__init__.py": "from pkg.a import A\nfrom pkg import b\n",
        "a.py": "from pkg.b import B\nA = B\n",
        "b.py": "B = 1\n",
    })
    assert cycles(import_graph(root)) == []
