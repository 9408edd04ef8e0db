"""Imports follow the data flow (docs/architecture.md): every module of src/dreamlab imports only from
its own layer or the layers below it, and no modules import each other, directly or in a circle.

Every import counts: top-level, inside functions (lazy imports), relative ones (resolved), and
`importlib.import_module("dreamlab....")` with a literal name. Imports under `if TYPE_CHECKING:`
count for the layers (a type from a layer above is still a dependency on it) but not for circles
(they never run). `from package import name` imports what Python finds: the name bound at the top of
package/__init__.py if it binds one (`from dreamlab import train` is the API function, not the
subpackage), else the submodule `package.name`, else package/__init__.py. Importing a submodule is not
counted as importing its parent package's __init__.py, although Python runs that first.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "dreamlab"

# Bottom first: a module may import modules of its own layer and of the layers listed before it.
# The order is config -> envs -> collect -> replay -> agents -> train -> track -> analyze -> cli;
# the differences are drawn and explained in docs/architecture.md:
# - track sits at the bottom (with functional): it is where metrics flow last, but in imports it is a
#   leaf that takes plain values (names, floats, arrays, paths) and imports no other layer, and every
#   layer below train hands it something (metric names, run-dir files, media);
# - device (torch devices and threads from the config) sits right above config, nets (torch modules)
#   right below agents, the only layer that uses them;
# - policy and sweep are top-level beside cli, and so is the package's __init__.py (the Python API).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("dreamlab.functional", "dreamlab.track")),
    ("config", ("dreamlab.config",)),
    ("device", ("dreamlab.device",)),
    ("envs", ("dreamlab.envs",)),
    ("collect", ("dreamlab.collect",)),
    ("replay", ("dreamlab.replay",)),
    ("nets", ("dreamlab.nets",)),
    ("agents", ("dreamlab.agents",)),
    ("train", ("dreamlab.train",)),
    ("analyze", ("dreamlab.analyze",)),
    ("top", ("dreamlab.cli", "dreamlab.policy", "dreamlab.sweep", PACKAGE)),
)

# Imports that go up a layer on purpose: (importer, imported) -> why. Each is drawn in docs/architecture.md.
ALLOWED: dict[tuple[str, str], str] = {}

def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def layer_of(module: str) -> int:
    """Index in LAYERS of the layer holding `module` (the longest matching prefix); -1 if none."""
    best, best_len = -1, -1
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != PACKAGE and module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def layer_name(module: str) -> str:
    return LAYERS[layer_of(module)][0]


def _target(name: str) -> str | None:
    """The module of ours that importing `name` loads: `name` itself or its longest known prefix."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


def top_level_names(module: str) -> set[str]:
    """Names bound at the top of a package's __init__.py (functions, classes, assignments, imports)."""
    if MODULES[module].name != "__init__.py":
        return set()
    names = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Imports(ast.NodeVisitor):
    """(imported module, line, under TYPE_CHECKING) for every import of a dreamlab module in one file."""

    def __init__(self, module: str):
        self.module = module
        self.package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        self.found: list[tuple[str, int, bool]] = []
        self.type_checking = False

    def add(self, name: str, line: int) -> None:
        target = _target(name)
        if target is not None and target != self.module:
            self.found.append((target, line, self.type_checking))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking, before = True, self.type_checking
            for child in node.body:
                self.visit(child)
            self.type_checking = before
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[:len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        bound = top_level_names(origin) if origin in MODULES else set()
        for alias in node.names:
            submodule = f"{origin}.{alias.name}"
            self.add(submodule if submodule in MODULES and alias.name not in bound else origin, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self.add(node.args[0].value, node.lineno)
        self.generic_visit(node)


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    visitor = Imports(module)
    visitor.visit(ast.parse(MODULES[module].read_text(), filename=str(MODULES[module])))
    return visitor.found


IMPORTS = {module: imports_of(module) for module in MODULES}


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{line}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One circle through the first member, inside the component: [a, b, ..., a]."""
    inside, start = set(members), members[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: the shortest circle back to start
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & inside):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    return members


def runtime_graph() -> dict[str, set[str]]:
    return {module: {target for target, _, type_only in found if not type_only} for module, found in IMPORTS.items()}


def test_every_module_has_a_layer():
    assert len(MODULES) > 50, sorted(MODULES)  # the source tree was found
    unplaced = sorted(m for m in MODULES if layer_of(m) < 0)
    assert not unplaced, f"place these modules in a layer of LAYERS (and docs/architecture.md): {unplaced}"


def test_imports_go_down_the_layers():
    violations = []
    for module, found in IMPORTS.items():
        for target, line, type_only in found:
            if layer_of(target) <= layer_of(module) or (module, target) in ALLOWED:
                continue
            how = " (under TYPE_CHECKING)" if type_only else ""
            violations.append(f"{where(module, line)}: {module} [{layer_name(module)}] imports {target} "
                              f"[{layer_name(target)}]{how}")
    order = " -> ".join(name for name, _ in LAYERS)
    assert not violations, f"imports from a later layer (order: {order}):\n" + "\n".join(violations)


def test_no_import_cycles():
    graph = runtime_graph()
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    lines = []
    for members in cycles:
        circle = a_cycle(graph, members)
        steps = [f"{a} -> {b} ({where(a, next(line for t, line, _ in IMPORTS[a] if t == b))})"
                 for a, b in zip(circle, circle[1:], strict=False)]
        lines.append(f"{len(members)} modules import each other: {', '.join(members)}\n  " + "\n  ".join(steps))
    assert not lines, "import cycles:\n" + "\n".join(lines)


def test_allowed_exceptions_are_real_and_documented():
    """An exception nobody needs any more is removed; every one is explained on the architecture page."""
    edges = {(module, target) for module, found in IMPORTS.items() for target, _, _ in found}
    stale = sorted(pair for pair in ALLOWED if pair not in edges or layer_of(pair[1]) <= layer_of(pair[0]))
    assert not stale, f"ALLOWED entries that are no longer imports up a layer: {stale}"
    page = (ROOT / "docs" / "architecture.md").read_text()
    undocumented = sorted(pair for pair in ALLOWED if pair[0] not in page or pair[1] not in page)
    assert not undocumented, f"explain these in docs/architecture.md: {undocumented}"
    missing = [name for name, _ in LAYERS if f"`{name}`" not in page]
    assert not missing, f"docs/architecture.md does not name these layers: {missing}"


def test_the_checker_sees_lazy_relative_and_type_checking_imports():
    """The parser itself, on a made-up module placed as dreamlab.train.example."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import checkpoint\n"
        "from .. import functional as fn\n"
        "if TYPE_CHECKING:\n"
        "    from dreamlab.policy import Policy\n"
        "def f():\n"
        "    from dreamlab.analyze.plot import plot_run_dir\n"
        "    import importlib\n"
        "    importlib.import_module('dreamlab.cli')\n"
    )
    path = SRC / PACKAGE / "train" / "example.py"
    MODULES["dreamlab.train.example"] = path
    try:
        visitor = Imports("dreamlab.train.example")
        visitor.visit(ast.parse(source))
    finally:
        del MODULES["dreamlab.train.example"]
    assert visitor.found == [("dreamlab.train.checkpoint", 2, False), ("dreamlab.functional", 3, False),
                             ("dreamlab.policy", 5, True), ("dreamlab.analyze.plot", 7, False),
                             ("dreamlab.cli", 9, False)]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(strongly_connected(graph)) == [["a", "b", "c"], ["d"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
