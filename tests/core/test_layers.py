"""The import graph of the non-test code runs one way: pipelines -> training -> curation -> metadata ->
matching -> core, with no circle between modules. Module-level and function-level imports both count.

`python tests/core/test_layers.py` prints the package -> package edge counts, the lazy (in-function)
imports of our modules per package, and every cross-package edge.
"""
from __future__ import annotations

import ast
import collections
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["core", "matching", "metadata", "curation", "training", "pipelines"]  # each may import only those before it


@functools.lru_cache(maxsize=None)
def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], collections.Counter]:
    """(module -> modules of ours it imports, lazy imports per module) over the LAYERS packages."""
    files = {}
    for pkg in LAYERS:
        for f in sorted((root / pkg).glob("*.py")):
            files[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    edges: dict[str, set[str]] = collections.defaultdict(set)
    lazy: collections.Counter = collections.Counter()
    for mod, f in files.items():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        in_function = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                raise AssertionError(f"{f}: relative import; write `from {mod.split('.')[0]}.… import …`")
            else:
                continue
            for target in targets:
                while target and target not in files:  # a name inside a module, or a package: the module holding it
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    edges[mod].add(target)
                    if id(node) in in_function:
                        lazy[mod] += 1
    return edges, lazy


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Edges from a package to one that is not below it in LAYERS."""
    out = []
    for a, targets in sorted(edges.items()):
        for b in sorted(targets):
            pa, pb = a.split(".")[0], b.split(".")[0]
            if pa != pb and LAYERS.index(pb) > LAYERS.index(pa):
                out.append(f"{a} -> {b}")
    return out


def test_no_import_circle():
    assert cycles(import_graph()[0]) == []


def test_imports_point_down_the_layers():
    assert upward(import_graph()[0]) == []


def test_the_ground_floor_and_the_matcher_import_nothing_above_them():
    edges, _ = import_graph()
    for mod, targets in edges.items():
        if mod.split(".")[0] == "core":
            assert all(t.split(".")[0] == "core" for t in targets), (mod, targets)
        if mod.split(".")[0] == "matching":
            assert all(t.split(".")[0] in ("core", "matching") for t in targets), (mod, targets)
    assert not edges.get("matching.text"), "matching.text (the text rules) imports nothing of ours"


def test_the_checker_sees_lazy_imports_and_circles(tmp_path):
    for pkg in LAYERS:
        (tmp_path / pkg).mkdir()
    (tmp_path / "core" / "a.py").write_text("def f():\n    from curation.b import g\n")
    (tmp_path / "curation" / "b.py").write_text("from core import a\n")
    edges, lazy = import_graph(tmp_path)
    assert cycles(edges) == [["core.a", "curation.b"]] and upward(edges) == ["core.a -> curation.b"]
    assert lazy == {"core.a": 1}


if __name__ == "__main__":
    graph, lazy_imports = import_graph()
    per_package = collections.Counter((a.split(".")[0], b.split(".")[0]) for a, bs in graph.items() for b in bs
                                      if a.split(".")[0] != b.split(".")[0])
    for (a, b), n in sorted(per_package.items(), key=lambda kv: (LAYERS.index(kv[0][0]), LAYERS.index(kv[0][1]))):
        print(f"{a} -> {b}: {n}")
    print("imports of our modules inside functions, per package:",
          {p: sum(n for m, n in lazy_imports.items() if m.split(".")[0] == p) for p in LAYERS})
    print("circles:", cycles(graph) or "none", "| upward:", upward(graph) or "none")
    if len(sys.argv) > 1:
        for a, bs in sorted(graph.items()):
            for b in sorted(bs):
                if a.split(".")[0] != b.split(".")[0]:
                    print(a, "->", b)
