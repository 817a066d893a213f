"""Per-jet training weights: kinematic reweighting to the signal, class balancing, control norm."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepsnake.errors import HepsnakeError


@dataclass
class Reweighter:
    """Histogram ratios (target class / each background class) in the configured jet variables.

    Fitted on the training split; applied unchanged to every split.
    """

    variables: list[str]
    edges: list[np.ndarray]
    ratios: dict[int, np.ndarray]
    class_scale: dict[int, float]

    def bins(self, jets: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(
            np.clip(np.searchsorted(e, jets[v], side="right") - 1, 0, len(e) - 2)
            for v, e in zip(self.variables, self.edges, strict=True)
        )

    def apply(self, jets: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Training weights for ``jets`` given their base (physics or unit) weights."""
        out = base.astype(np.float64).copy()
        index = self.bins(jets)
        for cls, ratio in self.ratios.items():
            is_cls = jets["flavour_label"] == cls
            out[is_cls] *= ratio[tuple(i[is_cls] for i in index)]
        for cls, scale in self.class_scale.items():
            out[jets["flavour_label"] == cls] *= scale
        return out.astype(np.float32)


def base_weights(jets: np.ndarray, use_physics: bool) -> np.ndarray:
    """Physics weights (``weight`` field) or ones."""
    return jets["weight"].astype(np.float64) if use_physics else np.ones(len(jets))


def fit_reweighter(jets: np.ndarray, cfg: dict[str, Any], class_names: list[str]) -> Reweighter:
    """Fit kinematic ratios and class-total scales on training jets, as ``cfg`` asks."""
    base = base_weights(jets, cfg["use_physics_weights"])
    labels = jets["flavour_label"]
    present = [c for c in range(len(class_names)) if np.any(labels == c)]
    rw = Reweighter([], [], {}, {})
    if cfg["mode"] == "pt_to_signal":
        target = class_names.index(cfg["target"])
        if target not in present:
            raise HepsnakeError("prepare: weights", f"no '{cfg['target']}' jets to reweight to")
        is_target = labels == target
        rw.variables = list(cfg["variables"])
        for v in rw.variables:
            inner = np.quantile(jets[v][is_target], np.linspace(0, 1, cfg["bins"] + 1))[1:-1]
            rw.edges.append(np.concatenate([[-np.inf], np.unique(inner), [np.inf]]))
        index = rw.bins(jets)
        shape = tuple(len(e) - 1 for e in rw.edges)
        target_hist = histogram(tuple(i[is_target] for i in index), shape, base[is_target])
        for cls in present:
            if cls == target:
                continue
            is_cls = labels == cls
            hist = histogram(tuple(i[is_cls] for i in index), shape, base[is_cls])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(hist > 0, target_hist / hist, 0.0)
            rw.ratios[cls] = np.minimum(ratio, cfg["max_weight"])
    if cfg["balance_classes"]:
        weighted = rw.apply(jets, base).astype(np.float64)
        mean_total = weighted.sum() / len(present)
        rw.class_scale = {c: mean_total / weighted[labels == c].sum() for c in present}
    return rw


def histogram(
    index: tuple[np.ndarray, ...], shape: tuple[int, ...], weights: np.ndarray
) -> np.ndarray:
    """Unit-normalised weighted histogram from per-jet bin indices."""
    flat = np.ravel_multi_index(index, shape)
    hist = np.bincount(flat, weights=weights, minlength=int(np.prod(shape))).reshape(shape)
    total = hist.sum()
    return hist / total if total > 0 else hist


def control_weights(jets: np.ndarray, is_data: np.ndarray) -> np.ndarray:
    """Data jets weigh 1; MC jets keep their physics weights, scaled to the data yield."""
    out = np.ones(len(jets))
    mc = ~is_data
    total_mc = jets["weight"][mc].astype(np.float64).sum()
    if mc.any() and total_mc > 0:
        out[mc] = jets["weight"][mc] * (is_data.sum() / total_mc)
    return out.astype(np.float32)


def resample(labels: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices that bring every class to the smallest (``down``: a random subset
    without repeats) or largest (``up``: every jet once, plus random repeats) class count."""
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    target = (min if mode == "down" else max)(len(g) for g in groups)
    picked = [
        rng.choice(g, size=target, replace=False)
        if mode == "down"
        else np.concatenate([g, rng.choice(g, size=target - len(g), replace=True)])
        for g in groups
    ]
    return np.sort(np.concatenate(picked))
