"""Jet selections: boolean expressions such as ``"pt > 20"``, ``"abs(eta) < 2.5"`` or
``"Jet_jetId >= 2"`` over the jet variables and the raw branches a reader read for them."""

from collections.abc import Mapping

import numpy as np

from hepsnake.errors import HepsnakeError
from hepsnake.io.expressions import compared_constants, evaluate, names

MEV_SUSPICIOUS = 1000.0  # a pt threshold below this on MeV data is most likely meant in GeV


def cut_names(cuts: list[str]) -> list[str]:
    """Every name the cuts read, in first-use order."""
    return list(dict.fromkeys(n for c in cuts for n in names(c, f"convert: cuts: '{c}'")))


def apply_cuts(
    jets: Mapping[str, np.ndarray],
    cuts: list[str],
    where: str,
    aux: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Mask of the jets passing every cut, and the jets failing each cut on its own.

    Names are looked up in ``jets``, then ``aux`` (raw branches read for the cuts); an
    unknown name, or a cut that is not one boolean per jet, names ``where``.
    """
    n = len(next(iter(jets.values())))
    variables = {**(aux or {}), **jets}
    mask = np.ones(n, dtype=bool)
    failed = []
    for text in cuts:
        unknown = [v for v in names(text, f"convert: cuts: '{text}'") if v not in variables]
        if unknown:
            raise HepsnakeError(where, f"cut '{text}' uses unknown jet variable '{unknown[0]}'")
        passed = np.asarray(evaluate(text, variables, f"{where}: cut '{text}'"))
        if passed.dtype != bool or passed.shape != (n,):
            raise HepsnakeError(
                where, f"cut '{text}' does not give one true/false per jet ({passed.dtype})"
            )
        failed.append(int(n - np.count_nonzero(passed)))
        mask &= passed
    return mask, failed


def mev_warnings(cuts: list[str], failed: list[int], unit: str) -> list[str]:
    """Cuts comparing ``pt`` with a number below 1000 that kept every jet of MeV data."""
    if unit != "MeV":
        return []
    return [
        f"cut '{text}' kept every jet: pt is in MeV here, so {max(limits):g} means "
        f"{max(limits) / 1000:g} GeV (write {max(limits) * 1000:g} for {max(limits):g} GeV)"
        for text, n_failed in zip(cuts, failed, strict=True)
        if n_failed == 0
        and (limits := compared_constants(text, "pt"))
        and max(limits) < MEV_SUSPICIOUS
    ]
