"""The ``norm`` stage: streamed mean/std of every input variable and the class weights."""

from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_yaml
from hepsnake.prepare.guard import check_inputs


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: np.ndarray) -> None:
        n_b = values.size
        if n_b == 0:
            return
        values = values.astype(np.float64, copy=False)
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


def apply_transform(values: np.ndarray, transform: Any) -> np.ndarray:
    """``log1p`` or ``{clip: [lo, hi]}``, as recorded in the norm dict."""
    if transform is None:
        return values
    if transform == "log1p":
        return np.log1p(values)
    if isinstance(transform, dict) and "clip" in transform:
        lo, hi = transform["clip"]
        return np.clip(values, lo, hi)
    raise HepsnakeError("config: inputs/transforms", f"unknown transform {transform!r}")


def norm_stats(
    config: dict[str, Any], train: str, norm_out: str, class_out: str, chunk: int = 100_000
) -> dict[str, Any]:
    """Mean/std per collection and variable over valid constituents of ``train``, streamed.

    Writes the Salt-style ``{collection: {variable: {mean, std[, transform]}}}`` YAML and a
    class-weight dict ``{jets: {label: [w_c]}}`` (total weight / (classes × class weight)).
    """
    inputs = config["inputs"]
    check_inputs(inputs)
    floor = config["prepare"]["std_floor"]
    stats: dict[str, dict[str, RunningStats]] = {}
    with h5py.File(train, "r") as h5:
        n_jets = h5["jets"].shape[0]
        for coll, variables in inputs["variables"].items():
            dataset = inputs["input_map"].get(coll, coll)
            if dataset not in h5:
                raise HepsnakeError(train, f"no dataset '{dataset}' for inputs '{coll}'")
            ds = h5[dataset]
            missing = [v for v in variables if v not in ds.dtype.names]
            if missing:
                raise HepsnakeError(train, f"variable '{missing[0]}' not in '{dataset}'")
            transforms = inputs["transforms"].get(coll, {})
            limit = inputs["num_inputs"].get(coll)
            stats[coll] = {v: RunningStats() for v in variables}
            buffer = np.empty((min(chunk, n_jets), *ds.shape[1:]), dtype=ds.dtype)
            for start in range(0, n_jets, chunk):
                stop = min(start + chunk, n_jets)
                block = buffer[: stop - start]
                ds.read_direct(block, np.s_[start:stop], np.s_[0 : stop - start])
                if limit is not None and block.ndim == 2:
                    block = block[:, :limit]
                valid = block["valid"] if "valid" in (block.dtype.names or ()) else None
                for v in variables:
                    values = block[v] if valid is None else block[v][valid]
                    stats[coll][v].update(apply_transform(values, transforms.get(v)))
        labels = h5["jets"]["label"]
        weights = h5["jets"]["train_weight"]
    norm = {
        coll: {v: entry(coll, v, s, floor, inputs["transforms"].get(coll, {}).get(v), train)
               for v, s in per.items()}
        for coll, per in stats.items()
    }
    write_yaml(norm_out, norm)
    write_yaml(class_out, {"jets": {"label": class_weights(labels, weights, config["class_names"])}})
    return norm


def entry(
    coll: str, var: str, s: RunningStats, floor: float | None, transform: Any, path: str
) -> dict[str, Any]:
    """One norm-dict entry; a zero or non-finite std is an error unless a floor is configured."""
    std = s.std
    if not np.isfinite(s.mean) or not np.isfinite(std) or std <= (floor or 0.0):
        if floor is None or not np.isfinite(std):
            raise HepsnakeError(
                path, f"'{coll}.{var}': std is {std:g} over {s.n} values (set prepare.std_floor)"
            )
        std = floor
    out: dict[str, Any] = {"mean": float(s.mean), "std": float(std)}
    if transform is not None:
        out["transform"] = transform
    return out


def class_weights(labels: np.ndarray, weights: np.ndarray, class_names: list[str]) -> list[float]:
    """Inverse class totals, normalised so a balanced sample gets 1 for every class."""
    totals = np.bincount(labels, weights=weights.astype(np.float64), minlength=len(class_names))
    with np.errstate(divide="ignore"):
        out = np.where(totals > 0, totals.sum() / (len(class_names) * totals), 0.0)
    return [float(w) for w in out]
