"""No import circle: the first-party import graph of the whole tree, built with ``ast``.

Every ``import`` / ``from … import`` of a first-party module is an edge, wherever it is written
(module level or inside a function: a lazy import that closes a circle is still a circle),
except those under ``if TYPE_CHECKING:``, which never run (a lower module may name the type of
an object it is handed). ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``. Imports of third-party and standard modules are ignored.

The whole tree is scanned; ``CHECKED_PACKAGES`` says whose circles fail the test (a circle
counts for a package when one of its modules is in it). Widen it to ``FIRST_PARTY`` once every
package is clean.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The project's own top-level modules and packages (as in pyproject.toml's isort known-first-party).
FIRST_PARTY = ("bot", "settings", "version", "domain", "storage", "gateway", "services", "plugins", "backstage",
               "telemetry",
               "sandbox", "demo", "bench", "tests")
#: The packages whose import circles fail the test: all of them.
CHECKED_PACKAGES: tuple[str, ...] = FIRST_PARTY


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``file:line``."""

    source: str
    target: str
    file: str
    line: int


def module_files(root: Path, top_level: tuple[str, ...] = FIRST_PARTY) -> dict[str, Path]:
    """Module name -> file for every first-party module under ``root`` (a package is its __init__)."""
    modules: dict[str, Path] = {}
    for name in top_level:
        single = root / f"{name}.py"
        if single.is_file():
            modules[name] = single
        package = root / name
        if package.is_dir():
            for path in sorted(package.rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them but the bodies of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a first-party module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_edges(modules: dict[str, Path], root: Path) -> list[Edge]:
    """Every first-party import edge of ``modules`` (sorted, one per statement and target)."""
    edges: set[Edge] = set()
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        file = str(path.relative_to(root))
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=file)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".") if package else []
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    targets.append(sub if sub in modules else base)
            for target in targets:
                known = _known(target, modules) if target else None
                if known is not None:
                    edges.add(Edge(module, known, file, node.lineno))
    return sorted(edges, key=lambda e: (e.source, e.target, e.line))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            if successors:
                succ = successors.pop(0)
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, sorted(graph.get(succ, ()))))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
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
                components.append(sorted(component))
    return sorted(components)


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, ())):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return [start]


@dataclass(frozen=True)
class Circle:
    """Modules that all import each other, directly or not, and one concrete cycle through them."""

    members: list[str]
    cycle: list[str]  # first module repeated at the end


def import_circles(edges: list[Edge]) -> list[Circle]:
    """Every import circle of the graph (a strongly connected component, or a module importing itself)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    return [Circle(component, _one_cycle(graph, component)) for component in strongly_connected(graph)
            if len(component) > 1 or component[0] in graph[component[0]]]


def import_cycles(edges: list[Edge]) -> list[list[str]]:
    """One concrete cycle per import circle."""
    return [circle.cycle for circle in import_circles(edges)]


def describe(cycle: list[str], edges: list[Edge]) -> str:
    """``a -> b -> a`` with the file and line of each import."""
    where = {(e.source, e.target): f"{e.file}:{e.line}" for e in reversed(edges)}
    steps = [f"{a} -> {b} ({where[(a, b)]})" for a, b in pairwise(cycle)]
    return " ; ".join(steps)


def in_packages(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def report(circles: list[Circle], edges: list[Edge]) -> str:
    """One paragraph per circle: its modules, then one cycle through them with each import's place."""
    return "\n".join(f"{len(c.members)} module(s) {', '.join(c.members)}: {describe(c.cycle, edges)}"
                     for c in circles)


def test_no_import_circle_in_checked_packages() -> None:
    edges = import_edges(module_files(ROOT), ROOT)
    checked = [c for c in import_circles(edges) if any(in_packages(m, CHECKED_PACKAGES) for m in c.members)]
    assert not checked, f"import circle(s) in {', '.join(CHECKED_PACKAGES)}:\n{report(checked, edges)}"


def test_the_graph_sees_the_tree() -> None:
    """The scan finds real edges (else an empty graph would pass): the sandbox wiring, lazy imports too."""
    modules = module_files(ROOT)
    assert {"bot", "settings", "sandbox", "sandbox.app", "tests.test_import_graph"} <= set(modules)
    edges = {(e.source, e.target) for e in import_edges(modules, ROOT)}
    assert ("sandbox.app", "sandbox.slash_commands") in edges          # from . import (…)
    assert ("sandbox.slash_commands", "sandbox.keys") in edges         # from .keys import SB_KEY
    assert ("sandbox", "sandbox.app") in edges                         # a package's __init__
    assert ("sandbox.keys", "sandbox.app") not in edges                # only under TYPE_CHECKING


# ---------------------------------------------------------------------- the helper on small trees


def _tree(root: Path, files: dict[str, str]) -> list[Edge]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_edges(module_files(root, ("pkg", "top")), root)


def test_a_circle_through_a_lazy_import_is_found_and_located(tmp_path: Path) -> None:
    edges = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/app.py": "def build():\n    from . import routes\n",
        "pkg/routes.py": "from .app import KEY\n",
        "pkg/leaf.py": "import os\n",
    })
    assert import_cycles(edges) == [["pkg.app", "pkg.routes", "pkg.app"]]
    assert report(import_circles(edges), edges) == (
        "2 module(s) pkg.app, pkg.routes: "
        "pkg.app -> pkg.routes (pkg/app.py:2) ; pkg.routes -> pkg.app (pkg/routes.py:1)")


def test_type_checking_imports_and_leaf_keys_make_no_circle(tmp_path: Path) -> None:
    edges = _tree(tmp_path, {
        "pkg/__init__.py": "from .app import App\n",
        "pkg/keys.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .app import App\nKEY = 1\n",
        "pkg/app.py": "from . import routes\nfrom .keys import KEY\n",
        "pkg/routes.py": "import typing\nfrom pkg.keys import KEY\nif typing.TYPE_CHECKING:\n    import pkg.app\n",
        "top.py": "import pkg.routes\nfrom pkg import keys\n",
    })
    assert import_cycles(edges) == []
    assert {(e.source, e.target) for e in edges} == {
        ("pkg", "pkg.app"), ("pkg.app", "pkg.routes"), ("pkg.app", "pkg.keys"), ("pkg.routes", "pkg.keys"),
        ("top", "pkg.routes"), ("top", "pkg.keys")}


def test_every_circle_is_reported_once_with_a_real_path(tmp_path: Path) -> None:
    edges = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from .. import a\n",
        "pkg/a.py": "from .b import x\n",
        "pkg/b.py": "from pkg.sub import y\nimport pkg.c\n",
        "pkg/c.py": "from . import c\n",
        "top.py": "import top\n",
    })
    assert import_cycles(edges) == [
        ["pkg.a", "pkg.b", "pkg.sub", "pkg.a"],
        ["pkg.c", "pkg.c"],
        ["top", "top"],
    ]
    circles = import_circles(edges)
    assert circles[0].members == ["pkg.a", "pkg.b", "pkg.sub"]
    assert [c for c in circles if any(in_packages(m, ("pkg.sub",)) for m in c.members)] == [circles[0]]
    assert not in_packages("pkg.subway", ("pkg.sub",))
