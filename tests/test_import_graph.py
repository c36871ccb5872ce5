"""mmzoo's modules import each other without cycles (read from the source, nothing imported).

Every `import` and `from ... import` in every module under `mmzoo/` counts,
at module level or inside a function or class, absolute or relative:

- `import mmzoo.a.b` and `from mmzoo.a import b` (when `mmzoo.a.b` is a
  module) are edges to `mmzoo.a.b`; `from mmzoo.a import name` is an edge
  to `mmzoo.a`;
- importing `mmzoo.a.b` first runs the package `mmzoo/a/__init__.py`, so it is
  an edge to `mmzoo.a` too, unless the importer is inside `mmzoo.a` itself
  (then that package is already being imported);
- a package's `__init__` importing its own submodules is a normal edge, and a
  submodule importing its package back (`import mmzoo`, `from mmzoo import
  build_model`) is an edge like any other.

A function-level import is no way out of a cycle: it only moves the failure
from import time to the first call.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmzoo"

# Programs written against the public API as a user writes it (`mmzoo.load`,
# `mmzoo.export`): above the face, so they may import it.
USES_THE_FACE = {"mmzoo.demo"}


def _modules():
    """`{dotted name: (path, is_package)}` of every module under mmzoo/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _imported(node, module, is_package, modules):
    """The dotted names an import statement brings in (a module, or a module's attribute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the importer's package
        package = module if is_package else module.rpartition(".")[0]
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    # `from a import b`: the module a.b where there is one, else a's attribute b.
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
            for alias in node.names]


def import_graph():
    """`{module: {imported module: (file, line)}}` over mmzoo's modules."""
    modules = _modules()
    graph = {}
    for module, (path, is_package) in modules.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported(node, module, is_package, modules):
                if name != "mmzoo" and not name.startswith("mmzoo."):
                    continue
                while name not in modules:  # a class or function: its module
                    name = name.rpartition(".")[0]
                targets = {name} | (_ancestors(name) - _ancestors(module) - {module})
                for target in targets - {module}:
                    edges.setdefault(target, (path.relative_to(ROOT), node.lineno))
    return graph


def find_cycle(graph):
    """One cycle as a list of modules `[a, b, ..., a]`, or `None`."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _describe(cycle, graph):
    return "\n".join(f"  {a} -> {b}   ({graph[a][b][0]}:{graph[a][b][1]})"
                     for a, b in zip(cycle, cycle[1:]))


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    # Module level, absolute: `from mmzoo.zoo.folder import (...)`.
    assert "mmzoo.zoo.folder" in graph["mmzoo.zoo.registry"]
    # Function level: `load` imports the entry (and Keras) only when called.
    assert "mmzoo.zoo.entry" in graph["mmzoo.zoo.registry"]
    # `from mmzoo import components`: the submodule, not the package face.
    assert "mmzoo.components" in graph["mmzoo.zoo.entry"]
    assert "mmzoo" not in graph["mmzoo.zoo.entry"]
    # `from mmzoo.data.tokenizer import ...` also runs mmzoo/data/__init__.py.
    assert {"mmzoo.data", "mmzoo.data.tokenizer"} <= set(graph["mmzoo.captioning.generate"])
    # Inside its own package, the package is not an extra edge.
    assert "mmzoo.data" not in graph["mmzoo.data.shapes"]
    # A package's __init__ imports its submodules.
    assert "mmzoo.zoo.registry" in graph["mmzoo.zoo"]


def test_find_cycle_reports_the_cycle():
    graph = {"a": {"b": ("a.py", 1)}, "b": {"c": ("b.py", 2)}, "c": {"a": ("c.py", 3)},
             "d": {"a": ("d.py", 4)}}
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b": ("a.py", 1)}, "b": {}}) is None


def test_no_import_cycles():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, ("mmzoo's modules import each other in a cycle:\n"
                           + _describe(cycle, graph)
                           + "\nPut the shared piece in a module of its own or in the "
                             "lower-level module (an import inside a function does not "
                             "break a cycle).")


def test_no_module_imports_the_package_face():
    graph = import_graph()
    upward = {module: where["mmzoo"] for module, where in graph.items()
              if "mmzoo" in where and module not in USES_THE_FACE}
    assert not upward, ("These modules import the package face `mmzoo` (its __init__, "
                        "which uses everything) instead of the module they need: "
                        + ", ".join(f"{m} ({f}:{line})" for m, (f, line) in upward.items()))
