"""The layout holds: no import cycles in src/ and connectors/, and the core's imports go
down its layers (LAYERS below) but for the few that go up on purpose.

A cycle means no module in it can be understood (or imported, or tested) without the
others, and the layering (utilities < net < archive < connector contract < sync < ops <
fleet < views < cli) says nothing any more. The check reads the source (AST), so it sees every
import: module level, inside functions, and under ``if TYPE_CHECKING:`` — an import
moved into a function to dodge an ImportError is still a dependency, and still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = (REPO / "src", REPO / "connectors")


def find_modules(roots) -> dict[str, Path]:
    """Every module under the source roots by its dotted name (a package by its own name)."""
    modules = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                modules[".".join(parts)] = path
    return modules


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """The dotted names one import statement asks for (relative ones made absolute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:   # `from . import x` is the package itself; each more dot goes one up
            parts = package.split(".")
            anchor = parts[: len(parts) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        # `from a.b import c` needs the module a.b, and a.b.c when c is a module
        return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return []


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """For each module, the modules it imports, each with the line of its first import.
    A name goes to the deepest module that exists (``import a.b.c`` where c is a class or
    function -> a.b); imports of modules outside the roots are no edges."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):   # every node: imports in functions and TYPE_CHECKING too
            for target in _imported_names(node, package):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    line = graph[name].get(target, node.lineno)
                    graph[name][target] = min(line, node.lineno)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that each reach all the others (the cycles),
    each sorted, only groups of two or more."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                lowlink[node] = min(lowlink[node], lowlink[other])
            elif other in on_stack:
                lowlink[node] = min(lowlink[node], index[other])
        if lowlink[node] == index[node]:   # node is the root of a group: pop it
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def describe(group: list[str], graph, modules: dict[str, Path]) -> str:
    """One cycle group: its modules, then each import inside it as file:line."""
    lines = [f"import cycle among {len(group)} modules: {', '.join(group)}"]
    for source in group:
        for target in sorted(set(graph[source]) & set(group)):
            where = modules[source].relative_to(REPO) if modules[source].is_relative_to(REPO) else modules[source]
            lines.append(f"    {where}:{graph[source][target]}  {source} -> {target}")
    return "\n".join(lines)


def find_cycles(roots):
    modules = find_modules(roots)
    graph = import_graph(modules)
    return modules, graph, strongly_connected(graph)


def test_no_import_cycles():
    modules, graph, groups = find_cycles(SOURCE_ROOTS)
    assert "archiver.connector" in modules and "archiver_connectors" in modules   # both roots read
    found = [describe(group, graph, modules) for group in groups]
    assert not found, "\n\n".join(found)


def test_the_checker_finds_a_cycle(tmp_path):
    """A tiny tree with a cycle closed only by a function-level and a TYPE_CHECKING import,
    through relative imports and a package: the checker reports it with each edge's line."""
    package = tmp_path / "src" / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import os\nfrom pkg.sub.b import helper\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..c import Thing\n"
        "def helper():\n"
        "    pass\n")
    (package / "c.py").write_text("def later():\n    from . import a\n")
    (package / "d.py").write_text("import pkg.a.helper\nfrom pkg import c\n")   # outside the cycle

    modules, graph, groups = find_cycles([tmp_path / "src"])

    assert graph["pkg.a"] == {"pkg.sub.b": 2}
    assert graph["pkg.sub.b"] == {"pkg.c": 3}
    assert graph["pkg.c"] == {"pkg": 2, "pkg.a": 2}
    assert graph["pkg.d"] == {"pkg.a": 1, "pkg": 2, "pkg.c": 2}
    assert groups == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    text = describe(groups[0], graph, modules)
    assert f"{package / 'sub' / 'b.py'}:3  pkg.sub.b -> pkg.c" in text
    assert f"{package / 'c.py'}:2  pkg.c -> pkg.a" in text

    (package / "c.py").write_text("def later():\n    pass\n")   # the cycle broken
    assert find_cycles([tmp_path / "src"])[2] == []


# The core's layers, lowest first: a module imports only from its own layer or lower ones.
# A module's layer is its folder under archiver/ (a top-level module is a utility, except
# the connector contract); the package itself (the library API) sits on top.
LAYERS = ("utilities", "net", "archive", "connector", "sync", "ops", "fleet", "views", "sim", "cli", "api")
UTILITIES = {"records", "inert", "crashpoints", "private_files", "secrets", "plugins", "config"}
# The imports that go up, each on purpose. A new one is a design decision: add it here with
# its reason, or move the code to the layer both sides can use.
UPWARD_ON_PURPOSE = {
    ("archiver.config", "archiver.net.limits"): "the [downloads] table is read into the client's limits",
    ("archiver.config", "archiver.ops.schedule"): "a cron line is checked when the config is read, by the daemon's parser",
    ("archiver.connector", "archiver.sync.imports"): "the contract's signatures name ExportSource (type checking only)",
    ("archiver.connector", "archiver.sync.runner"): "the contract's signatures name SyncContext (type checking only)",
    ("archiver.net.client", "archiver.sync.imports"): "an API answer's nesting is checked by the export reader's rule",
    ("archiver.net.tokens", "archiver.sync.locks"): "a token refresh takes the same file lock as runs do",
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    if parts[1] == "connector":
        return "connector"
    return "utilities" if parts[1] in UTILITIES else parts[1]


def test_the_core_imports_go_down_its_layers():
    modules = find_modules([REPO / "src"])
    graph = import_graph(modules)
    upward = {}
    for module, targets in graph.items():
        for target, line in targets.items():
            if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module)):
                upward[(module, target)] = f"{modules[module].relative_to(REPO)}:{line}"
    assert set(LAYERS) >= {layer_of(m) for m in modules}, "a new folder needs its place in LAYERS"
    unexpected = {edge: where for edge, where in upward.items() if edge not in UPWARD_ON_PURPOSE}
    assert not unexpected, "imports that go up a layer:\n" + "\n".join(
        f"  {a} -> {b} ({where})" for (a, b), where in sorted(unexpected.items()))
    gone = set(UPWARD_ON_PURPOSE) - set(upward)
    assert not gone, f"no longer imported, take them out of UPWARD_ON_PURPOSE: {sorted(gone)}"
