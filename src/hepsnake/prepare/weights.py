"""Per-jet training weights: the negative-weight policy, kinematic reweighting to the signal,
class balancing and the normalisation to mean |weight| 1; the control region's MC scaled to
data.

A jet's training weight is ``norm × class_scale[class] × ratio[class](x) × base``: ``base`` its
physics weight with the ``prepare.negative_weights`` policy applied (abs: |w|, keep: w, zero:
max(w, 0)), or 1 without physics weights; ``ratio`` the kinematic reweighting to the target
class; ``class_scale`` gives every class the same total; ``norm`` makes the mean |training
weight| over the training split 1, so the loss scale does not depend on the generator's
units. All are fitted on the training split and applied unchanged to every split.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from hepsnake.config.contracts import WeightsSpec
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
    norm: float = 1.0

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
        out *= self.norm
        return out.astype(np.float32)


def base_weights(jets: np.ndarray, use_physics: bool, negative: str) -> np.ndarray:
    """Physics weights (``weight`` field), a negative one replaced as the ``negative`` policy
    says (:data:`hepsnake.negative_weights.POLICIES`), or ones."""
    if not use_physics:
        return np.ones(len(jets))
    weights = jets["weight"].astype(np.float64)
    if negative == "abs":
        return np.abs(weights)
    if negative == "zero":
        return np.maximum(weights, 0.0)
    return weights


def pairwise_half(n: int) -> int:
    """Where numpy's pairwise summation splits ``n`` (> 128) values: half, rounded down to a
    multiple of 8."""
    half = n // 2
    return half - half % 8


class PairwiseSum:
    """``np.sum`` of ``n`` float64 values given in order, a block at a time: numpy's pairwise
    summation (:func:`pairwise_half`), its subtrees of up to ``leaf`` values summed by
    ``np.sum`` as they fill, so the result is the same to the bit."""

    def __init__(self, n: int, leaf: int = 1 << 16) -> None:
        self.n, self.leaf = n, max(leaf, 128)  # numpy sums up to 128 values without halving
        self.ends = [b for _, b in self.leaves(0, n)] if n else []
        self.sums: list[float] = []
        self.pending: list[np.ndarray] = []
        self.done = self.held = 0  # values summed into ``sums``, values pending

    def leaves(self, a: int, b: int) -> list[tuple[int, int]]:
        """The subtrees of ``[a, b)`` of at most ``leaf`` values, in order."""
        if b - a <= self.leaf:
            return [(a, b)]
        mid = a + pairwise_half(b - a)
        return self.leaves(a, mid) + self.leaves(mid, b)

    def add(self, values: np.ndarray) -> None:
        """Append ``values`` (float64) to the sum."""
        self.pending.append(values)
        self.held += len(values)
        k = len(self.sums)
        if k == len(self.ends) or self.done + self.held < self.ends[k]:
            return
        flat = np.concatenate(self.pending)
        while k < len(self.ends) and self.ends[k] - self.done <= len(flat):
            stop = self.ends[k] - self.done
            self.sums.append(np.sum(flat[:stop]))
            flat, self.done, k = flat[stop:], self.ends[k], k + 1
        self.pending, self.held = [flat], len(flat)

    def total(self) -> float:
        """The sum of all ``n`` values (given in full)."""
        found = dict(zip(self.ends, self.sums, strict=True))

        def tree(a: int, b: int) -> float:
            if b - a <= self.leaf:
                return found[b] if b > a else 0.0
            mid = a + pairwise_half(b - a)
            return tree(a, mid) + tree(mid, b)

        return tree(0, self.n)


Blocks = Callable[[], Iterable[np.ndarray]]  # the training jets in order, a block at a time


def fit_reweighter(
    train: Blocks,
    classes: dict[int, int],
    target_values: dict[str, np.ndarray],
    cfg: WeightsSpec,
    class_names: list[str],
    negative: str,
) -> Reweighter:
    """Fit kinematic ratios, class-total scales and the normalisation on training jets, as
    ``cfg`` (``prepare.weights``) and the ``negative`` policy ask.

    ``classes`` counts the training jets per class label, ``target_values`` holds each
    variable's values of the target class (any order); ``train()`` passes over the jets in
    their order, once per step that needs them: each histogram is summed in that order and
    each total as ``np.sum`` of the whole split would sum it. A class whose weights do not sum
    to a positive number cannot be balanced (an error), nor can a split without weight."""
    use_physics = cfg.use_physics_weights

    def base(jets: np.ndarray) -> np.ndarray:
        return base_weights(jets, use_physics, negative)

    present = [c for c in range(len(class_names)) if classes.get(c, 0)]
    rw = Reweighter([], [], {}, {})
    if cfg.mode == "pt_to_signal":
        target = class_names.index(str(cfg.target))
        if target not in present:
            raise HepsnakeError("prepare: weights", f"no '{cfg.target}' jets to reweight to")
        rw.variables = list(cfg.variables)
        for v in rw.variables:
            inner = np.quantile(target_values[v], np.linspace(0, 1, cfg.bins + 1))[1:-1]
            rw.edges.append(np.concatenate([[-np.inf], np.unique(inner), [np.inf]]))
        shape = tuple(len(e) - 1 for e in rw.edges)
        hists = {c: np.zeros(int(np.prod(shape))) for c in present}
        for jets in train():
            flat = np.ravel_multi_index(rw.bins(jets), shape)
            weights = base(jets)
            for cls, hist in hists.items():
                is_cls = jets["flavour_label"] == cls
                np.add.at(hist, flat[is_cls], weights[is_cls])  # bincount's order of additions
        target_hist = normalised(hists[target].reshape(shape))
        for cls in present:
            if cls == target:
                continue
            hist = normalised(hists[cls].reshape(shape))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(hist > 0, target_hist / hist, 0.0)
            # signed weights (keep) can leave a bin of the target below 0: no negative ratio
            rw.ratios[cls] = np.clip(ratio, 0.0, cfg.max_weight)
    n_train = sum(classes.values())
    if cfg.balance_classes:
        total = PairwiseSum(n_train)
        per_class = {c: PairwiseSum(classes[c]) for c in present}
        for jets in train():
            weighted = rw.apply(jets, base(jets)).astype(np.float64)
            total.add(weighted)
            for cls, cls_sum in per_class.items():
                cls_sum.add(weighted[jets["flavour_label"] == cls])
        sums = {c: s.total() for c, s in per_class.items()}
        for c, value in sums.items():
            if not value > 0:
                raise HepsnakeError(
                    "prepare: weights",
                    f"class '{class_names[c]}': its training weights sum to {value:.4g}"
                    f" (prepare.negative_weights: {negative}), so it cannot be balanced: use"
                    " negative_weights abs, or weights.balance_classes false",
                )
        mean_total = total.total() / len(present)
        rw.class_scale = {c: mean_total / value for c, value in sums.items()}
    magnitude = PairwiseSum(n_train)
    for jets in train():
        magnitude.add(np.abs(rw.apply(jets, base(jets)).astype(np.float64)))
    if not magnitude.total() > 0:
        raise HepsnakeError(
            "prepare: weights",
            f"the training jets' weights are all 0 (prepare.negative_weights: {negative})",
        )
    rw.norm = n_train / magnitude.total()
    return rw


def normalised(hist: np.ndarray) -> np.ndarray:
    """``hist`` divided by its sum (unchanged if that is not positive)."""
    total = hist.sum()
    return hist / total if total > 0 else hist


def control_scale(n_data: int, n_mc: int, total_mc: float) -> float | None:
    """The factor that scales MC physics weights (summing to ``total_mc``) to the data yield;
    None without MC jets or MC weight."""
    return np.int64(n_data) / total_mc if n_mc and total_mc > 0 else None


def control_weights(
    jets: np.ndarray, is_data: np.ndarray, scale: float | None, negative: str
) -> np.ndarray:
    """Data jets weigh 1; MC jets their physics weights (the ``negative`` policy applied, see
    :func:`base_weights`) times ``scale`` (:func:`control_scale`), or 1 where it is None."""
    out = np.ones(len(jets))
    mc = ~is_data
    if scale is not None:
        out[mc] = base_weights(jets[mc], True, negative) * scale
    return out.astype(np.float32)


def resample(labels: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices that bring every class to the smallest (``down``: a random subset
    without repeats) or largest (``up``: every jet once, plus random repeats) class count;
    int32 where they fit (the draws do not depend on the type)."""
    index = np.int32 if len(labels) < 2**31 else np.int64
    groups = [np.flatnonzero(labels == c).astype(index) for c in np.unique(labels)]
    target = (min if mode == "down" else max)(len(g) for g in groups)
    picked = [
        rng.choice(g, size=target, replace=False)
        if mode == "down"
        else np.concatenate([g, rng.choice(g, size=target - len(g), replace=True)])
        for g in groups
    ]
    del groups
    rows = np.concatenate(picked)
    del picked
    rows.sort()
    return rows
