"""A safe evaluator for reader and cut expressions such as ``hypot(Jet_Px, Jet_Py)``.

An expression is parsed with :mod:`ast` and only a whitelist is evaluated: number literals,
variable (branch) names, unary ``- + ~ not``, binary ``+ - * / ** %``, comparisons (chains
too), ``& |`` and ``and or`` (both elementwise), and calls of the functions in
:data:`FUNCTIONS`. Nothing else (attributes, subscripts, lambdas, keywords, other names
called) is accepted, so no config string can run code. Values may be numpy arrays, awkward
arrays (jagged per-jet values broadcast against per-event scalars) or numbers.
"""

import ast
import functools
import itertools
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hepsnake.errors import HepsnakeError


def where_(condition: Any, x: Any, y: Any) -> Any:
    """``where(condition, x, y)`` on numpy or awkward arrays."""
    import awkward as ak  # not at module level: config validation imports this module

    args = [condition, x, y]
    arrays = [i for i, v in enumerate(args) if isinstance(v, ak.Array)]
    if arrays:
        # broadcast the arrays to one structure first: a per-event condition against jagged
        # per-jet values then picks per jet (ak.where alone would pick whole lists: a union)
        for i, v in zip(arrays, ak.broadcast_arrays(*(args[i] for i in arrays)), strict=True):
            args[i] = v
        return ak.where(*args)
    return np.where(condition, x, y)


def delta_phi(phi1: Any, phi2: Any) -> Any:
    """``phi1 - phi2`` wrapped into [-pi, pi)."""
    return (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> Any:
    """ΔR = hypot(Δη, Δφ) with Δφ wrapped."""
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "abs": (np.abs, 1),
    "sqrt": (np.sqrt, 1),
    "hypot": (np.hypot, 2),
    "log": (np.log, 1),
    "log1p": (np.log1p, 1),
    "exp": (np.exp, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "arcsinh": (np.arcsinh, 1),
    "arctan2": (np.arctan2, 2),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
    "where": (where_, 3),
    "delta_phi": (delta_phi, 2),
    "delta_r": (delta_r, 4),
}
"""Callable functions: name -> (implementation, number of arguments)."""

BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: np.logical_not,
    ast.Not: np.logical_not,
}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
BOOLEAN: dict[type, Callable[[Any, Any], Any]] = {ast.And: operator.and_, ast.Or: operator.or_}


def snippet(node: ast.AST, text: str) -> str:
    """The source text of ``node`` (for error messages)."""
    return ast.get_source_segment(text, node) or type(node).__name__


MAX_LENGTH = 2000  # characters of one expression


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> ast.expr | str:
    """The checked syntax tree of ``text``, or the reason it is refused."""
    if len(text) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        return f"not a valid expression ({exc.msg})"
    except (RecursionError, MemoryError, ValueError):
        return "nested too deeply"
    source = text.strip()
    for node in ast.walk(tree):
        reason = _refusal(node, source)
        if reason:
            return reason
    return tree.body


def _refusal(node: ast.AST, text: str) -> str | None:
    """Why ``node`` is not allowed in an expression (None: allowed)."""
    allowed = (
        ast.Expression,
        ast.BinOp,
        ast.UnaryOp,
        ast.Compare,
        ast.BoolOp,
        ast.Call,
        ast.Name,
        ast.Constant,
        ast.Load,
        *BINARY,
        *UNARY,
        *COMPARE,
        *BOOLEAN,
    )
    if not isinstance(node, allowed):
        return (
            f"'{snippet(node, text)}' is not allowed (only numbers, names, arithmetic, "
            f"comparisons and calls of {', '.join(FUNCTIONS)})"
        )
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, bool) or not isinstance(node.value, int | float)
    ):
        return f"'{snippet(node, text)}' is not allowed: only number literals"
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        return f"name '{node.id}' is not allowed"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            return (
                f"'{snippet(node.func, text)}' is not a known function "
                f"(known: {', '.join(FUNCTIONS)})"
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return f"'{snippet(node, text)}': keyword or starred arguments are not allowed"
        n_args = FUNCTIONS[node.func.id][1]
        if len(node.args) != n_args:
            return f"'{snippet(node, text)}': {node.func.id} takes {n_args} argument(s)"
    return None


def parse(text: str, where: str) -> ast.expr:
    """The checked syntax tree of expression ``text``; refusal names ``where`` and the piece."""
    if not isinstance(text, str):
        raise HepsnakeError(where, f"{text!r} is not an expression string")
    tree = _parse(text)
    if isinstance(tree, str):
        raise HepsnakeError(where, f"'{text if len(text) <= 80 else text[:77] + '...'}': {tree}")
    return tree


def check(text: str, where: str) -> None:
    """Raise HepsnakeError naming ``where`` if ``text`` is not an allowed expression."""
    parse(text, where)


def names(text: str, where: str = "expression") -> list[str]:
    """The variable (branch) names ``text`` reads, in first-use order (not function names)."""
    tree = parse(text, where)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called]
    return list(dict.fromkeys(found))


def evaluate(text: str, variables: Mapping[str, Any], where: str) -> Any:
    """The value of ``text`` with names looked up in ``variables`` (elementwise, vectorised)."""
    tree = parse(text, where)

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            # float: an integer power such as 10**10**10 would compute for ever, a float
            # one overflows at once (one error line)
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in variables:
                raise HepsnakeError(where, f"'{text}' uses unknown variable '{node.id}'")
            return variables[node.id]
        if isinstance(node, ast.UnaryOp):
            return UNARY[type(node.op)](value(node.operand))
        if isinstance(node, ast.BinOp):
            return BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.BoolOp):
            return functools.reduce(BOOLEAN[type(node.op)], [value(v) for v in node.values])
        if isinstance(node, ast.Compare):
            left, result = value(node.left), None
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = value(right_node)
                term = COMPARE[type(op)](left, right)
                result = term if result is None else result & term
                left = right
            return result
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id][0](*(value(a) for a in node.args))

    try:
        with np.errstate(all="ignore"):
            return value(tree)
    except HepsnakeError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise HepsnakeError(
            where, f"cannot evaluate '{text}' ({type(exc).__name__}: {first[0] if first else ''})"
        ) from exc


def literal(node: ast.expr) -> float | None:
    """The value of a number literal, signed or not (None for anything else)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = literal(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    return float(node.value) if isinstance(node, ast.Constant) else None


def compared_constants(text: str, name: str) -> list[float]:
    """The numbers ``name`` is compared with directly in ``text`` (e.g. ``pt > 20`` → [20])."""
    tree = parse(text, "expression")
    found: list[float] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for a, b in itertools.pairwise(operands):
                for x, y in ((a, b), (b, a)):
                    number = literal(y)
                    if isinstance(x, ast.Name) and x.id == name and number is not None:
                        found.append(number)
    return found
