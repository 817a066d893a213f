"""The ``norm`` stage: streamed mean/std of every input variable and the class weights."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from hepsnake.config.contracts import Inputs, NormContract
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_yaml
from hepsnake.io.files import h5_file, read_yaml
from hepsnake.names import LABEL, input_fields, prob_suffix
from hepsnake.prepare.guard import check_input_values, label_map_variable

COLOURS = [f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown", "pink")]
# plot label and colour of the FTAG classes, as in atlas-ftag-tools' flavours.yaml
FTAG_STYLE = {
    "bjets": ("$b$-jets", "tab:blue"),
    "cjets": ("$c$-jets", "tab:orange"),
    "ujets": ("Light-jets", "tab:green"),
    "taujets": ("$\\tau$-jets", "tab:purple"),
}
NORM_DICT, CLASS_DICT = "norm dict", "class dict"  # what the two outputs are called in errors
CHUNK = 10_000  # jets per read: a block of constituents stays in cache while it is reduced
LEAK_SAMPLE = 5_000  # jets (shuffled: a random sample) compared with the truth columns


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: np.ndarray) -> None:
        """Merge one chunk of float64 values (two-pass mean and squared deviations)."""
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.sum()) / n_b
        deviations = values - mean_b
        m2_b = float(np.einsum("i,i->", deviations, deviations))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


def blocks(ds: h5py.Dataset, chunk: int, limit: int | None = None) -> Iterator[np.ndarray]:
    """``ds`` in blocks of ``chunk`` rows (constituent tables cut to ``limit`` slots).

    The next block is read in a background thread while the caller reduces the current one
    (h5py releases the GIL while HDF5 reads and decompresses). Two buffers alternate, so a
    block is valid until the next one is requested.
    """
    n = ds.shape[0]
    cut = ds.ndim == 2 and limit is not None and limit < ds.shape[1]
    shape = (min(chunk, n), limit) if cut else (min(chunk, n), *ds.shape[1:])
    buffers = [np.empty(shape, dtype=ds.dtype) for _ in range(2)]
    starts = range(0, n, chunk)

    def read(i: int) -> np.ndarray:
        start, stop = starts[i], min(starts[i] + chunk, n)
        block = buffers[i % 2][: stop - start]
        ds.read_direct(block, np.s_[start:stop, :limit] if cut else np.s_[start:stop])
        return block

    if not starts:
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, 0)
        for i in range(1, len(starts)):
            block = pending.result()
            pending = reader.submit(read, i)
            yield block
        yield pending.result()


def counted(block: np.ndarray) -> np.ndarray:
    """The records of a block that enter the statistics: every jet, or the valid constituents.

    One gather of whole records, so that each variable is then a cheap strided view.
    """
    flat = block.reshape(-1)
    if block.ndim == 1 or "valid" not in (block.dtype.names or ()):
        return flat
    return flat.take(np.flatnonzero(flat["valid"]))


def norm_stats(
    contract: NormContract,
    train: str,
    norm_out: str,
    class_out: str,
    chunk: int = CHUNK,
    classes_out: str | None = None,
) -> dict[str, Any]:
    """Mean/std per collection and variable over valid constituents of ``train``, streamed.

    Writes the Salt-style ``{collection: {field: {mean, std}}}`` YAML over the fields models
    read (:func:`~hepsnake.names.input_fields`: a transformed input under its own name) and a
    class-weight dict ``{jets: {flavour_label: [w_c]}}`` in Salt's layout (total weight /
    (classes × class weight)); ``classes_out``: the classes in ftag's ``Flavours`` YAML format
    (:func:`flavour_classes`).
    Each dataset is read once, ``chunk`` jets at a time: memory does not grow with the file.
    """
    inputs = contract.inputs
    fields = input_fields(inputs)
    floor = contract.std_floor
    n_classes = len(contract.class_names)
    stats: dict[str, dict[str, RunningStats]] = {}
    totals = np.zeros(n_classes)  # train_weight per class, from the first pass over the jets
    weighed = False
    with h5_file(train, "training split") as h5:
        for coll in inputs.variables:
            ds = input_dataset(h5, train, inputs, coll)
            sample = counted(ds[:LEAK_SAMPLE])
            check_input_values(sample, coll, inputs, label_map_variable(h5.attrs), train)
            stats[coll] = {v: RunningStats() for v in fields[coll]}
            weigh = not weighed and ds.name == "/jets"
            weighed |= weigh
            for block in blocks(ds, chunk, inputs.num_inputs.get(coll)):
                if weigh:
                    totals += class_sums(block, n_classes)
                records = counted(block)
                for v, running in stats[coll].items():
                    running.update(records[v].astype(np.float64))
        if not weighed:  # jets are not an input collection: one pass for the weights
            for block in blocks(h5["jets"], chunk):
                totals += class_sums(block, n_classes)
    norm = {
        coll: {v: entry(coll, v, s, floor, train) for v, s in per.items()}
        for coll, per in stats.items()
    }
    write_yaml(norm_out, norm)
    write_yaml(class_out, {"jets": {LABEL: class_weights(totals)}})
    if classes_out is not None:
        write_yaml(classes_out, flavour_classes(list(contract.class_names)))
    return norm


def input_dataset(h5: h5py.File, path: str, inputs: Inputs, coll: str) -> h5py.Dataset:
    """The dataset of input collection ``coll``, which must hold each of its variables and
    transformed fields (written by the split stage)."""
    name = inputs.dataset(coll)
    if name not in h5:
        raise HepsnakeError(path, f"no dataset '{name}' for inputs '{coll}'")
    ds = h5[name]
    wanted = dict.fromkeys([*inputs.variables[coll], *input_fields(inputs)[coll]])
    missing = [v for v in wanted if v not in ds.dtype.names]
    if missing:
        raise HepsnakeError(path, f"variable '{missing[0]}' not in '{name}'")
    return ds


def entry(coll: str, var: str, s: RunningStats, floor: float | None, path: str) -> dict[str, float]:
    """One norm-dict entry; a zero or non-finite std is an error unless a floor is configured."""
    std = s.std
    if not np.isfinite(s.mean) or not np.isfinite(std) or std <= (floor or 0.0):
        if floor is None or not np.isfinite(std):
            raise HepsnakeError(
                path,
                f"'{coll}.{var}': std is {std:g} over {s.n} values"
                + (" (set prepare.std_floor)" if np.isfinite(std) else " (NaN or inf values)"),
            )
        std = floor
    return {"mean": float(s.mean), "std": float(std)}


def class_sums(jets: np.ndarray, n_classes: int) -> np.ndarray:
    """Summed ``train_weight`` per ``flavour_label`` of a block of jets."""
    return np.bincount(jets["flavour_label"], jets["train_weight"], minlength=n_classes)


def class_weights(totals: np.ndarray) -> list[float]:
    """Inverse class totals, normalised so a balanced sample gets 1 for every class."""
    with np.errstate(divide="ignore"):
        out = np.where(totals > 0, totals.sum() / (len(totals) * totals), 0.0)
    return [float(w) for w in out]


def flavour_classes(class_names: list[str]) -> list[dict[str, Any]]:
    """The classes as atlas-ftag-tools' ``LabelContainer.from_yaml`` reads them: a cut on
    ``flavour_label``, a plot label and colour (ftag's for the FTAG classes), category
    ``hepsnake`` and ``_px``, the prediction-column suffix (:func:`~hepsnake.names.prob_suffix`),
    so ``Label.px`` names our columns."""
    out = []
    for i, name in enumerate(class_names):
        label, colour = FTAG_STYLE.get(name, (name, COLOURS[i % len(COLOURS)]))
        out.append(
            {
                "name": name,
                "label": label,
                "cuts": [f"{LABEL} == {i}"],
                "colour": colour,
                "category": "hepsnake",
                "_px": prob_suffix(name),
            }
        )
    return out


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool), as YAML reads numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def read_norm_dict(path: str, inputs: Inputs) -> dict[str, Any]:
    """The norm dict at ``path``; it holds a finite mean and std for every field the models
    read (:func:`~hepsnake.names.input_fields` of ``inputs``)."""
    norm = read_yaml(path, NORM_DICT)
    for coll, fields in input_fields(inputs).items():
        entries = norm.get(coll)
        for field in fields:
            entry = entries.get(field) if isinstance(entries, dict) else None
            numbers = isinstance(entry, dict) and all(
                is_number(entry.get(k)) for k in ("mean", "std")
            )
            if not numbers:
                raise HepsnakeError(
                    path,
                    f"not a {NORM_DICT} of these inputs: no finite mean and std of "
                    f"'{coll}.{field}' (rerun the norm stage)",
                )
    return norm


def read_class_weights(path: str, n_classes: int) -> list[float]:
    """The ``n_classes`` class weights of the class dict at ``path``."""
    jets = read_yaml(path, CLASS_DICT, keys=("jets",))["jets"]
    weights = jets.get(LABEL) if isinstance(jets, dict) else None
    if (
        not isinstance(weights, list)
        or len(weights) != n_classes
        or not all(map(is_number, weights))
    ):
        raise HepsnakeError(
            path,
            f"not a {CLASS_DICT} of {n_classes} classes: jets.{LABEL} is not {n_classes} weights",
        )
    return [float(w) for w in weights]
