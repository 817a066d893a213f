"""The import graph of src/hepsnake: no circles, and the config package at the bottom.

Read from the source with ``ast`` (nothing is imported): every ``import``/``from ... import``
of a hepsnake module counts, at module level or inside a function, except under
``if TYPE_CHECKING:``. ``from hepsnake.a import b`` is an edge to the module ``hepsnake.a.b``
where that is a module, else to ``hepsnake.a``. Importing ``hepsnake.a.b`` from outside
package ``hepsnake.a`` runs ``hepsnake/a/__init__.py`` first: an edge to ``hepsnake.a`` too.
"""

import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# what hepsnake.config may import (transitively): itself, errors, names, paths and the leaf
# helpers whose checks validation runs (cut expressions, truth inputs, URL secrets, the
# component option schemas, the atomic write of the resolved
# file) with their packages' (empty) __init__; no stage, no torch
CONFIG_MAY_REACH = {
    "hepsnake",
    "hepsnake.errors",
    "hepsnake.names",
    "hepsnake.paths",
    "hepsnake.io",
    "hepsnake.io.atomic",
    "hepsnake.io.expressions",
    "hepsnake.io.remote",
    "hepsnake.prepare",
    "hepsnake.prepare.guard",
    "hepsnake.models",
    "hepsnake.models.registry",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The hepsnake modules ``tree`` imports (``package``: its own package, for relative ones)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1]]
                    + ([base] if base else [])
                )
            if base in modules or any(f"{base}.{a.name}" in modules for a in node.names):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (SRC / "hepsnake").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = imports(ast.parse(path.read_text()), package, set(files))
        found |= {p for m in found for p in parents(m) if not in_package(name, p)}
        graph[name] = found - {name}
    return graph


def parents(module: str) -> list[str]:
    """The packages ``module`` lies in, below the top package (``a.b.c`` -> ``a.b``)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_graph_sees_the_imports():
    graph = import_graph()
    assert "hepsnake.config.loading" in graph["hepsnake.config"]
    assert "hepsnake.errors" in graph["hepsnake.config.schema"]
    # an import inside a function counts
    assert "hepsnake.prepare.split" in graph["hepsnake.cli"]


def test_no_import_circles():
    graph = import_graph()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        raise AssertionError(f"import circle: {' -> '.join(err.args[1])}") from None


def test_a_circle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        assert set(err.args[1]) == {"a", "b", "c"}
    else:
        raise AssertionError("no circle found")


def test_config_package_imports_down_only():
    graph = import_graph()
    for name in graph:
        if name == "hepsnake.config" or name.startswith("hepsnake.config."):
            outside = {m for m in reach(graph, name) if not m.startswith("hepsnake.config")}
            assert outside <= CONFIG_MAY_REACH, (
                f"{name} reaches {sorted(outside - CONFIG_MAY_REACH)}"
            )
