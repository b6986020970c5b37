"""The import graph of the ``kaizen`` package, read from the source with :mod:`ast`
(nothing is imported): no cycles between modules, and the layering rules.

Every ``import`` statement counts, at module level or inside a function (a lazy import
still ties the two modules together). ``from kaizen.x import y`` is an edge to
``kaizen.x.y`` when ``y`` is a module, else to ``kaizen.x``; relative imports are
resolved against the importing module. Dynamic imports (``importlib.import_module``)
are not seen. The one allowed cycle: a package ``__init__`` importing its own submodules
(a submodule may import its package back).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "plugins" / "kaizen"
HEAVY = ("pandas", "numpy", "sqlalchemy")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str  # a kaizen module, or the top-level name of a third-party one
    line: int

    def where(self) -> str:
        path = module_paths()[self.source].relative_to(ROOT.parents[1])
        return f"{path}:{self.line}"


def _module_name(path: Path) -> str:
    parts = ("kaizen", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def module_paths() -> dict[str, Path]:
    return {
        _module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts
    }


def _is_package(module: str) -> bool:
    return module_paths()[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if _is_package(module) else module.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[str]:
    """Absolute names an import statement loads: ``x.y`` for ``import x.y``; for
    ``from x import y`` the module ``x.y`` if it is one, else ``x``."""
    modules = module_paths()
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _resolve(module, node)
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return []


@cache
def edges() -> tuple[Edge, ...]:
    modules = module_paths()
    out: set[Edge] = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _targets(module, node):
                if name == "kaizen" or name.startswith("kaizen."):
                    # ``import kaizen.a.b`` where b is not a module (impossible) or a name
                    # of a module that does not exist: keep the longest existing prefix
                    while name not in modules and "." in name:
                        name = name.rpartition(".")[0]
                    out.add(Edge(module, name, node.lineno))
                elif name:
                    out.add(Edge(module, name.split(".")[0], node.lineno))
    return tuple(sorted(out, key=lambda e: (e.source, e.target, e.line)))


def kaizen_graph() -> dict[str, dict[str, Edge]]:
    """module → {imported kaizen module: first import line}, without the allowed
    edges of a package ``__init__`` to its own submodules."""
    modules = module_paths()
    graph: dict[str, dict[str, Edge]] = {m: {} for m in modules}
    for e in edges():
        if e.target not in modules or e.target == e.source:
            continue
        if _is_package(e.source) and e.target.startswith(e.source + "."):
            continue
        graph[e.source].setdefault(e.target, e)
    return graph


def _components(graph: dict[str, dict[str, Edge]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _cycle_through(graph: dict[str, dict[str, Edge]], comp: list[str]) -> list[Edge]:
    """One shortest cycle through the component's first module, as its edges."""
    members, start = set(comp), comp[0]
    came: dict[str, Edge] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w, e in sorted(graph[v].items()):
            if w not in members or w in came:
                continue
            came[w] = e
            if w == start:
                path, cur = [], start
                while True:
                    path.append(came[cur])
                    cur = came[cur].source
                    if cur == start:
                        return path[::-1]
            queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a component


def import_cycles() -> list[str]:
    graph = kaizen_graph()
    out = []
    for comp in _components(graph):
        cycle = _cycle_through(graph, comp)
        steps = " → ".join([cycle[0].source] + [e.target for e in cycle])
        lines = "; ".join(f"{e.source} → {e.target} ({e.where()})" for e in cycle)
        out.append(f"{steps}  [{lines}]  (component: {', '.join(comp)})")
    return out


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# (rule id, importing layer, forbidden targets)
LAYERS = (
    ("kpis", ("kaizen.kpis",), ("kaizen.reports", "kaizen.delivery")),
    ("sources", ("kaizen.sources",), ("kaizen.kpis", "kaizen.reports", "kaizen.delivery")),
    ("delivery", ("kaizen.delivery",), ("kaizen.kpis", "kaizen.sources")),
    ("light-calendar", ("kaizen.timetables", "kaizen.calendar"), HEAVY),
)


def violations(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{e.source} imports {e.target} ({e.where()})"
        for e in edges()
        if any(_in(e.source, p) for p in layer) and any(_in(e.target, f) for f in forbidden)
    ]


# ---------------------------------------------------------------- the checks
def test_the_graph_sees_the_package():
    modules = module_paths()
    assert {"kaizen", "kaizen.calendar", "kaizen.reports.daily", "kaizen.kpis.measures"} <= set(modules)
    graph = kaizen_graph()
    # a lazy (function-level) import is an edge, and `from kaizen import x` is one to kaizen.x
    assert "kaizen.kpis.catalog" in graph["kaizen.reports.model"]
    assert "kaizen.reports.charts" in graph["kaizen.reports.review"]
    assert "kaizen.calendar" in graph["kaizen.reports.daily"]


def test_cycle_finder_on_a_toy_graph():
    def g(**adj):
        return {v: {w: Edge(v, w, 1) for w in ws} for v, ws in adj.items()}

    toy = g(a=["b"], b=["c"], c=["a", "d"], d=[], e=["e2"], e2=[])
    assert _components(toy) == [["a", "b", "c"]]
    assert [(e.source, e.target) for e in _cycle_through(toy, ["a", "b", "c"])] == [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
    ]


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, "import cycles between kaizen modules:\n" + "\n".join(cycles)


@pytest.mark.parametrize(("layer", "forbidden"), [p[1:] for p in LAYERS], ids=[p[0] for p in LAYERS])
def test_layering(layer, forbidden):
    found = violations(layer, forbidden)
    assert not found, f"{' / '.join(layer)} must not import {', '.join(forbidden)}:\n" + "\n".join(found)
