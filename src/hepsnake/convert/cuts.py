"""Jet selection strings such as ``"pt > 20"`` or ``"abs(eta) < 2.5"``."""

import operator
import re
from collections.abc import Callable

import numpy as np

from hepsnake.errors import HepsnakeError

OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
CUT = re.compile(r"^\s*(?:(abs)\(\s*(\w+)\s*\)|(\w+))\s*(<=|>=|==|!=|<|>)\s*([-+0-9.eE]+)\s*$")


def parse_cut(text: str) -> tuple[str, bool, str, float]:
    """(variable, take abs, operator, value) of one cut string."""
    match = CUT.match(text)
    if not match:
        raise HepsnakeError(f"convert: cuts: '{text}'", "not of the form 'var OP number'")
    is_abs, abs_var, var, op, value = match.groups()
    return abs_var or var, bool(is_abs), op, float(value)


def apply_cuts(jets: dict[str, np.ndarray], cuts: list[str], where: str) -> np.ndarray:
    """Boolean mask of the jets passing every cut; an unknown variable names ``where``."""
    n = len(next(iter(jets.values())))
    mask = np.ones(n, dtype=bool)
    for text in cuts:
        var, is_abs, op, value = parse_cut(text)
        if var not in jets:
            raise HepsnakeError(where, f"cut '{text}' uses unknown jet variable '{var}'")
        values = np.abs(jets[var]) if is_abs else jets[var]
        mask &= OPS[op](values, value)
    return mask
