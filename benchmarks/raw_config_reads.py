"""Count raw config reads in src/hepsnake outside the config package (the target is 0).

A *raw config read* is a read of a config value out of a plain mapping rather than from a
typed contract's attribute. In every function of every module of ``src/hepsnake`` except
``hepsnake/config/`` (which validates the raw config and builds the contracts) and
``hepsnake/init/`` (which writes a new config file for a ROOT file: it authors config, it
never receives one), a *raw mapping* is

* a parameter with a config name (see below) that is unannotated or annotated as a plain
  mapping of anything (``dict``, ``dict[str, Any]``, ``Mapping[str, Any]``, ...): a
  function that takes the config, or a section of it, as a dict;
* ``self.<name>`` with a config name;
* a name assigned from a raw read (``ev = config["evaluate"]``) or bound by a ``for`` over
  one (``for coll, spec in readers.items()``).

Counted: each such parameter, each subscript in load context with a constant key
(``X["key"]``) whose object is (an attribute or subscript chain from) a raw mapping, and each
``X.get("key", ...)``/``X.setdefault("key", ...)`` of one. A config name is one of
:data:`CONFIG_NAMES` (what the stages called their config, its sections and aliases before
the contracts) or ends in ``_cfg``, ``_config`` or ``_spec``.

``python benchmarks/raw_config_reads.py`` prints each read and the count; ``--smoke`` prints
the count only; ``--root DIR`` counts another checkout (``git worktree add DIR main``: the
count before the contracts).
"""

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_NAMES = {
    "config",
    "cfg",
    "conf",
    "settings",
    "spec",
    "part",
    "prep",
    "conv",
    "ev",
    "sim",
    "study",
    "inputs",
    "reader",
    "readers",
    "tracking",
    "weights_cfg",
    "label_map",
    "link",
    "coll",
    "btag",
    "parameters",
    "scan",
    "model",
    "adversarial",
    "evaluate",
}
SUFFIXES = ("_cfg", "_config", "_spec")
MAPPINGS = {"dict", "Mapping", "MutableMapping", "Hyperparameters"}


def is_config_name(name: str) -> bool:
    return name in CONFIG_NAMES or name.endswith(SUFFIXES)


def chain_root(node: ast.AST) -> ast.AST:
    """The start of a subscript/attribute/call chain (``self.x`` stops at the attribute)."""
    while True:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node if node.value.id == "self" else node.value
        if isinstance(node, ast.Subscript | ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            return node


def plain_mapping(annotation: ast.AST | None) -> bool:
    """Unannotated, or a plain mapping whose values may be anything."""
    if annotation is None:
        return True
    value_type = None
    if isinstance(annotation, ast.Subscript):
        if isinstance(annotation.slice, ast.Tuple) and len(annotation.slice.elts) == 2:
            value_type = annotation.slice.elts[1]
        annotation = annotation.value
    name = (
        annotation.attr if isinstance(annotation, ast.Attribute) else getattr(annotation, "id", "")
    )
    return name in MAPPINGS and (value_type is None or ast.unparse(value_type) == "Any")


def is_read(node: ast.AST) -> bool:
    """A constant-key subscript in load context, or a ``.get``/``.setdefault`` of a constant."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Constant)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "setdefault")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
    )


def read_object(node: ast.AST) -> ast.AST:
    return node.value if isinstance(node, ast.Subscript) else node.func.value


def function_reads(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[int, str]]:
    """The raw config reads of one function (its nested functions included)."""
    args = [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]
    raw = {a.arg for a in args if is_config_name(a.arg) and plain_mapping(a.annotation)}
    found = [
        (a.lineno, f"{func.name}({a.arg}: {ast.unparse(a.annotation) if a.annotation else ''})")
        for a in args
        if a.arg in raw
    ]

    def is_raw(node: ast.AST) -> bool:
        root = chain_root(node)
        if isinstance(root, ast.Attribute):  # self.<name>
            return is_config_name(root.attr)
        if isinstance(root, ast.Name):
            return root.id in raw
        return False

    def from_read(node: ast.AST) -> bool:
        return any(is_read(n) and is_raw(read_object(n)) for n in ast.walk(node))

    changed = True
    while changed:  # aliases of raw reads, to a fixpoint
        changed = False
        for node in ast.walk(func):
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign) and from_read(node.value):
                targets = node.targets
            elif isinstance(node, ast.For) and from_read(node.iter):
                targets = [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id not in raw:
                        raw.add(name.id)
                        changed = True
    found += [
        (n.lineno, ast.unparse(n)) for n in ast.walk(func) if is_read(n) and is_raw(read_object(n))
    ]
    return found


def raw_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, source text) of each raw config read in ``tree`` (each counted once)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.update(function_reads(node))
    return sorted(found)


def count(root: Path) -> dict[str, list[tuple[int, str]]]:
    """Per module file (relative to ``root``), its raw config reads."""
    package = root / "src" / "hepsnake"
    out = {}
    for path in sorted(package.rglob("*.py")):
        if (package / "config") in path.parents or (package / "init") in path.parents:
            continue
        reads = raw_reads(ast.parse(path.read_text(), str(path)))
        if reads:
            out[str(path.relative_to(root))] = reads
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout to count")
    parser.add_argument("--smoke", action="store_true", help="print the count only")
    args = parser.parse_args(argv)
    reads = count(args.root)
    if not args.smoke:
        for path, found in reads.items():
            for line, text in found:
                print(f"{path}:{line}: {text}")
    print(f"raw config reads outside hepsnake/config: {sum(map(len, reads.values()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
