"""The ``split`` stage: event-level train/val/test splits, merged, shuffled and weighted."""

import itertools
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.lib.recfunctions import repack_fields

from hepsnake import __version__
from hepsnake.config.contracts import LabelMap, PrepareSpec, SplitContract, Transforms
from hepsnake.config.typed import to_data
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path, json_text
from hepsnake.io.files import h5_file
from hepsnake.io.h5 import DEFAULT_UNIT, TableWriter, set_attrs
from hepsnake.io.vds import missing_sources
from hepsnake.names import transformed_field
from hepsnake.negative_weights import figures, policy_text, warning
from hepsnake.pause import pause_point
from hepsnake.prepare.classes import check_classes
from hepsnake.prepare.duplicates import unique_rows
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.weights import (
    PairwiseSum,
    Reweighter,
    base_weights,
    control_scale,
    control_weights,
    fit_reweighter,
    resample,
)

SPLITS = ("train", "val", "test")
SHUFFLE_BYTES = 16 << 20  # block read and bucket size of the collection shuffle (at least)
WRITES_PER_BUCKET = 256  # a block's write to a bucket: >= SHUFFLE_BYTES / this, on average
READ_JETS = 1 << 20  # jets per read of eventNumber and per scatter of the shuffle's inverse
PLOT_JETS = 1_000_000  # the reweighting plot shows the first (shuffled) training jets


class Input:
    """One converted sample: its open file, jet dtype, and per jet its class label and split.

    Only those two small per-jet columns are held (int8 where they fit); the jet records
    are read in blocks."""

    def __init__(self, path: str, contract: SplitContract, control: bool) -> None:
        """Open ``path`` and read its jets; the file stays open until :meth:`close` (closed
        again at once if reading fails)."""
        self.path = path
        self.h5 = h5_file(path, "converted sample")
        try:
            self.read(contract, control)
        except BaseException:
            self.h5.close()
            raise

    def __enter__(self) -> "Input":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.h5.close()

    def read(self, contract: SplitContract, control: bool) -> None:
        """Labels and the split of each jet of the open file (``which``: index into
        :data:`SPLITS`, or -1 for a jet in none)."""
        if "jets" not in self.h5:
            raise HepsnakeError(self.path, "no 'jets' dataset")
        missing = missing_sources(self.h5)
        if missing:
            raise HepsnakeError(
                self.path,
                f"{len(missing)} part files of its virtual datasets are missing, first"
                f" {missing[0]}: convert the sample again",
            )
        self.name = str(self.h5.attrs.get("sample", Path(self.path).stem))
        sample = next((s for s in contract.samples if s.name == self.name), None)
        if sample is None:
            raise HepsnakeError(self.path, f"sample '{self.name}' is not in the config")
        jets = self.h5["jets"]
        self.dtype, self.n_jets = jets.dtype, jets.shape[0]
        self.energy_unit = str(jets.attrs.get("energy_unit", DEFAULT_UNIT))
        if self.n_jets == 0:
            raise HepsnakeError(self.path, "empty sample: no jets")
        self.labels = self.columns(["flavour_label"])["flavour_label"]
        self.is_data = control and sample.label == "data"
        self.dropped = 0  # jets the label map removes
        removed = None
        if not control:
            removed = self.relabel(contract.prepare.label_map, contract.class_names)
        self.labels = smallest_int(self.labels)
        prep = contract.prepare
        self.which = np.empty(self.n_jets, np.int8)
        if sample.role == "test":
            self.which[:] = SPLITS.index("test")
        else:
            fractions = [prep.fractions[s] for s in SPLITS]
            for start in range(0, self.n_jets, READ_JETS):
                events = jets.fields("eventNumber")[start : start + READ_JETS]
                u = event_uniform(self.name, events, prep.seed)
                self.which[start : start + len(u)] = assign_splits(u, fractions)
        if removed is not None:
            self.which[removed] = -1
        self.collections = sorted(k for k in self.h5 if k != "jets")

    def drop(self, keep: np.ndarray) -> None:
        """Put the jets where ``keep`` is False in no split."""
        self.which[~keep] = -1

    def count(self, split: int) -> int:
        """Jets of split ``split`` (an index into :data:`SPLITS`)."""
        return int(np.count_nonzero(self.which == split))

    def class_counts(self, split: int, n_classes: int) -> np.ndarray:
        """Jets of split ``split`` per class label."""
        labels = self.labels[self.which == split].astype(np.intp)
        return np.bincount(labels[labels >= 0], minlength=n_classes)[:n_classes]

    def split_weights(self) -> Iterator[np.ndarray]:
        """The physics weights of the jets in a split, in blocks of :data:`READ_JETS`."""
        jets = self.h5["jets"]
        for start in range(0, self.n_jets, READ_JETS):
            weights = jets.fields("weight")[start : start + READ_JETS]
            yield weights[self.which[start : start + len(weights)] >= 0]

    def columns(self, names: list[str]) -> np.ndarray:
        """Jet fields ``names`` (each a field of the file) of every jet, as one table."""
        if not names:
            return np.empty(self.n_jets, np.dtype([]))
        return (
            self.h5["jets"]
            .fields(names)[:]
            .astype(np.dtype([(n, self.dtype[n]) for n in names]), copy=False)
        )

    def require_fields(self, names: list[str], key: str) -> None:
        """Raise naming the file and config ``key`` if a jet field of ``names`` is missing."""
        missing = [n for n in names if n not in self.dtype.names]
        if missing:
            raise HepsnakeError(self.path, f"{key}: '{missing[0]}' is not a jet field")

    def relabel(
        self, label_map: LabelMap | None, class_names: tuple[str, ...]
    ) -> np.ndarray | None:
        """Apply ``prepare.label_map`` to jets without a sample label: ``drop`` jets (and with
        ``unmapped: drop`` jets in no class) leave, counted in ``dropped``, and are returned
        as a mask (None if no jet needs the map); a value in no class is an error otherwise,
        and so is a map that leaves no jet of the file."""
        unlabelled = self.labels < 0
        if not unlabelled.any():
            return None
        if not label_map:
            raise HepsnakeError(
                self.path, "jets have no class label and prepare.label_map is unset"
            )
        variable = label_map.variable
        if variable not in self.dtype.names:
            raise HepsnakeError(self.path, f"label_map variable '{variable}' is not a jet field")
        raw = self.columns([variable])[variable]
        mapped = np.full(len(raw), UNMAPPED, dtype=np.int32)
        for cls in label_map.map:
            mapped[in_class(raw, label_map.intervals(cls))] = (
                DROP if cls == "drop" else class_names.index(cls)
            )
        mapped = np.where(unlabelled, mapped, self.labels)
        missing = mapped == UNMAPPED
        if missing.any() and label_map.unmapped == "error":
            raise HepsnakeError(
                self.path,
                f"prepare.label_map: {variable} values in no class: {value_counts(raw[missing])}"
                " (add them to a class or to drop, or set unmapped: drop)",
            )
        removed = missing | (mapped == DROP)
        if removed.all():
            raise HepsnakeError(
                self.path,
                f"prepare.label_map leaves no jets; {variable} values seen:"
                f" {value_counts(raw[unlabelled])}",
            )
        self.dropped = int(removed.sum())
        self.labels = np.where(removed, -1, mapped).astype(self.labels.dtype)
        return removed


DROP, UNMAPPED = -2, -3  # label-map codes of jets that leave


def smallest_int(values: np.ndarray) -> np.ndarray:
    """``values`` as int8 if they fit (class labels), else unchanged."""
    info = np.iinfo(np.int8)
    fits = info.min <= values.min() and values.max() <= info.max
    return values.astype(np.int8) if fits else values


def index_dtype(n: int) -> np.dtype:
    """The integer type of row indices below ``n``: int32 where it fits (half the memory)."""
    return np.dtype(np.int32 if n < 2**31 else np.int64)


def in_class(raw: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    """Whether each value of ``raw`` is in one of a label-map class's ``intervals``
    (:meth:`~hepsnake.config.contracts.LabelMap.intervals`)."""
    mask = np.zeros(len(raw), dtype=bool)
    for lo, hi in intervals:
        mask |= (raw == lo) if lo == hi else (raw >= lo) & (raw < hi)
    return mask


def value_counts(values: np.ndarray, most: int = 10) -> str:
    """``"5 (120 jets), 0 (80 jets)"``: the ``most`` commonest values, commonest first."""
    unique, counts = np.unique(values, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:most]
    text = ", ".join(f"{unique[i]:g} ({counts[i]} jets)" for i in order)
    return text + (f" and {len(unique) - most} more values" if len(unique) > most else "")


Derived = dict[str, tuple[str, Any]]  # transformed field -> (variable, transform)
LOG1P_FLOOR = -1.0 + 1e-6  # log1p's argument is clamped here: no -inf or NaN from pt <= -1


def derived_fields(inputs: Transforms, dataset: str, raw: set[str], where: str) -> Derived:
    """The ``inputs.transforms`` fields written to prepared ``dataset`` (fields ``raw``): each
    named by :func:`~hepsnake.names.transformed_field`; the variable must be a field, the
    transformed name must not."""
    out: Derived = {}
    for coll, per in inputs.transforms.items():
        if inputs.dataset(coll) != dataset:
            continue
        for variable, transform in per.items():
            name = transformed_field(variable, transform)
            if variable not in raw:
                raise HepsnakeError(
                    where, f"inputs.transforms.{coll}: '{variable}' is not a '{dataset}' field"
                )
            if name in raw:
                raise HepsnakeError(
                    where,
                    f"inputs.transforms.{coll}.{variable}: '{dataset}' already has a field"
                    f" '{name}', the name of its transformed values",
                )
            out[name] = (variable, transform)
    return out


def transformed(values: np.ndarray, transform: Any) -> np.ndarray:
    """``log1p`` (argument clamped at :data:`LOG1P_FLOOR`) or ``{clip: [lo, hi]}`` of
    ``values``, as float32."""
    x = values.astype(np.float32)
    if transform == "log1p":
        return np.log1p(np.maximum(x, np.float32(LOG1P_FLOOR)))
    lo, hi = transform["clip"]
    return np.clip(x, np.float32(lo), np.float32(hi))


def fill_derived(table: np.ndarray, derived: Derived) -> None:
    """Set each derived field of ``table`` from its raw variable."""
    for name, (variable, transform) in derived.items():
        table[name] = transformed(table[variable], transform)


def with_derived(table: np.ndarray, derived: Derived) -> np.ndarray:
    """``table`` with its derived fields appended (``table`` itself if there are none)."""
    if not derived:
        return table
    dtype = np.dtype([*table.dtype.descr, *((n, np.float32) for n in derived)])
    out = np.empty(table.shape, dtype)
    for name in table.dtype.names:
        out[name] = table[name]
    fill_derived(out, derived)
    return out


def union_dtype(inputs: list[Input], derived: Derived) -> np.dtype:
    """Every jet field of every input (first-seen order), the ``derived`` fields, then sample,
    weights and is_data (False outside the control region: one jets dtype for every
    prepared file of a run)."""
    fields: dict[str, np.dtype] = {}
    for inp in inputs:
        for name in inp.dtype.names:
            fields.setdefault(name, inp.dtype[name])
    fields.update(dict.fromkeys(derived, np.dtype(np.float32)))
    fields["sample"] = np.dtype(np.int16)
    fields["train_weight"] = np.dtype(np.float32)
    fields["is_data"] = np.dtype(bool)
    return np.dtype(list(fields.items()))


def missing_value(dtype: np.dtype) -> Any:
    """The fill value of a jet field an input lacks: NaN, False, -1 (signed) or 0."""
    return {"f": np.nan, "b": False, "i": -1}.get(dtype.kind, 0)


def merged(
    inp: Input,
    table: np.ndarray,
    labels: np.ndarray,
    dtype: np.dtype,
    names: list[str],
    derived: Derived,
) -> np.ndarray:
    """Jets ``table`` of ``inp`` (class ``labels``) in the merged ``dtype``: fields ``inp``
    lacks filled (see :func:`missing_value`), the ``derived`` fields, sample and is_data."""
    part = np.empty(len(table), dtype=dtype)
    for field in dtype.names:
        if field == "flavour_label":
            part[field] = labels
        elif field in table.dtype.names:
            part[field] = table[field]
        else:
            part[field] = missing_value(dtype[field])
    fill_derived(part, derived)
    part["sample"] = names.index(inp.name)
    part["is_data"] = inp.is_data
    return part


def split(
    contract: SplitContract,
    inputs: list[str],
    outputs: dict[str, str],
    summary_path: str,
    debug: dict[str, str] | None = None,
    control: bool = False,
    plot: str | None = None,
    shuffle_bytes: int = SHUFFLE_BYTES,
) -> dict[str, Any]:
    """Write the train/val/test files (and debug subsets) from converted samples.

    Jets are assigned by a stable hash of (sample, eventNumber), merged across samples and
    shuffled with the configured seed; an input file used twice (same checksum) is an error,
    or with ``prepare.deduplicate`` its later copies are dropped, so no event is in two
    splits. A class with no jets in a split is an error, or is dropped
    (:mod:`~hepsnake.prepare.classes`). ``train_weight`` follows ``prepare.weights`` and
    ``prepare.negative_weights`` (:mod:`~hepsnake.prepare.weights`; control samples: MC
    normalised to data). ``prepare.resample`` resamples the training split by class instead;
    its jets then keep their base weights (physics weights or 1), normalised. A failure leaves
    no output. Returns the summary written to ``summary_path``: jets and weight sums per split,
    sample and class (``rows``), per sample its ``negative_weights`` figures (``samples``),
    and the ``warnings`` (empty and rare classes, negative weights).

    Memory: per jet its label and split (a byte each), and while the order of a split is
    drawn, 4 bytes per jet of it; the order goes to a scratch file, and jets and
    constituents go through a bucket shuffle (:func:`fill_buckets`) in blocks of
    ``shuffle_bytes``. With ``prepare.resample`` the training order is sorted in memory.
    """
    prep = contract.prepare
    with ExitStack() as stack:
        # entered first, so renamed last: the summary appears only after every split file
        tmp_summary = stack.enter_context(atomic_path(summary_path))
        ins = [stack.enter_context(Input(p, contract, control)) for p in inputs]
        for inp in ins[1:]:
            if inp.energy_unit != ins[0].energy_unit:
                raise HepsnakeError(
                    inp.path,
                    f"energy unit {inp.energy_unit}, but {ins[0].path} is in"
                    f" {ins[0].energy_unit}: convert every sample in one unit",
                )
        for inp, keep in zip(ins, unique_rows(ins, prep.deduplicate), strict=True):
            inp.drop(keep)
        weights = prep.weights
        reweighted = not control and (weights.mode != "none" or plot)
        if reweighted:
            for inp in ins:
                inp.require_fields(list(weights.variables), "prepare.weights.variables")
        collections = ins[0].collections
        for inp in ins[1:]:
            if inp.collections != collections:
                raise HepsnakeError(inp.path, f"collections {inp.collections} != {collections}")
        names = sorted(inp.name for inp in ins)
        jet_fields = {n for inp in ins for n in inp.dtype.names}
        derived = derived_fields(contract.inputs, "jets", jet_fields, ins[0].path)
        dtype = union_dtype(ins, derived)
        warnings = [] if control else checked_classes(ins, list(contract.class_names), prep)
        negative = {inp.name: figures(inp.split_weights()) for inp in ins}
        warnings += negative_weight_warnings(negative, prep, control)
        n_in = {s: sum(inp.count(i) for inp in ins) for i, s in enumerate(SPLITS)}
        for s in SPLITS:
            if n_in[s] == 0:
                raise HepsnakeError(f"split '{s}'", "no jets: check fractions and inputs")
        targets = {s: outputs[s] for s in SPLITS}
        if debug:
            targets.update({f"debug_{s}": debug[s] for s in SPLITS})
        files = {}
        for key, path in targets.items():
            tmp = stack.enter_context(atomic_path(path))
            files[key] = stack.enter_context(h5py.File(tmp, "w"))
        scratch = Path(next(iter(files.values())).filename).parent
        tmp_dir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix=".split-", dir=scratch))
        )
        plan = stack.enter_context(h5py.File(tmp_dir / "plan.h5", "w"))
        n_out = ordering(ins, n_in, prep, control, plan)
        variables = (list(weights.variables) or ["pt"]) if reweighted else []
        jets = JetSplits(
            dtype, names, derived, contract, control, variables, bool(plot) and not control
        )
        write_split_files(
            files, ins, jets, plan, n_out, collections, contract, control, tmp_dir, shuffle_bytes
        )
        report = jets.summary()
        report["dropped"] = {"label_map": sum(inp.dropped for inp in ins)}
        report["samples"] = {name: {"negative_weights": f} for name, f in negative.items()}
        report["warnings"] = warnings
        if plot and jets.reweighter is not None:
            from hepsnake.prepare.plots import plot_reweighting

            plot_reweighting(jets.plotted(), prep.weights, list(contract.class_names), plot)
        tmp_summary.write_text(json_text(report))
    return report


def checked_classes(
    ins: list[Input], class_names: list[str], prep: PrepareSpec
) -> list[dict[str, Any]]:
    """:func:`~hepsnake.prepare.classes.check_classes` on the jets of each split: the jets of
    a dropped class leave every split; returns the warnings."""
    counts = {
        s: sum(inp.class_counts(i, len(class_names)) for inp in ins) for i, s in enumerate(SPLITS)
    }
    dropped, warnings = check_classes(counts, class_names, prep)
    if dropped:
        for inp in ins:
            inp.drop(~np.isin(inp.labels, dropped))
    return warnings


def negative_weight_warnings(
    negative: dict[str, dict[str, float]], prep: PrepareSpec, control: bool
) -> list[dict[str, Any]]:
    """A ``negative_weights`` warning per sample with negative physics weights (``negative``:
    sample → its :func:`~hepsnake.negative_weights.figures`), saying what its training
    weights are."""
    training = policy_text(prep.negative_weights)
    if not control and not prep.weights.use_physics_weights:
        training = "1 (prepare.weights.use_physics_weights: false)"
    found = (warning(name, f, training) for name, f in negative.items())
    return [w for w in found if w is not None]


def ordering(
    ins: list[Input], n_in: dict[str, int], prep: PrepareSpec, control: bool, plan: h5py.File
) -> dict[str, int]:
    """Per split, the jets' order: optional resampling (train), then a seeded shuffle of the
    inputs' ``n_in`` jets of that split, one after the other (the sources). Written to ``plan``:
    ``{split}/pos``, each placed jet's output position, by source then position, and with
    resampling ``{split}/repeats``, how often each source is placed. Returns the jets per
    split."""
    n_out = {}
    for i, s in enumerate(SPLITS):
        rng = np.random.default_rng([prep.seed, i, int(control)])
        n = n_in[s]
        rows = None  # with resampling: the sources placed, sorted, with repeats
        if s == "train" and not control and prep.resample != "none":
            labels = np.concatenate([inp.labels[inp.which == i] for inp in ins])
            rows = resample(labels, prep.resample, rng)
            del labels
        m = n if rows is None else len(rows)
        # rng.permutation(m) is arange(m) shuffled: the same draws at any integer width
        shuffled = np.arange(m, dtype=index_dtype(m))
        rng.shuffle(shuffled)
        pos = plan.create_dataset(f"{s}/pos", data=shuffled)
        del shuffled  # read back in blocks: one array of the split in memory at a time
        inverse = np.empty(m, pos.dtype)
        for start in range(0, m, READ_JETS):  # inverse[shuffled] = arange, a block at a time
            stop = min(start + READ_JETS, m)
            inverse[pos[start:stop]] = np.arange(start, stop, dtype=pos.dtype)
        if rows is None:
            pos[:] = inverse
        else:
            write_resampled(plan, s, n, rows, inverse)
        n_out[s] = plan[f"{s}/pos"].shape[0]
    return n_out


def write_resampled(
    plan: h5py.File, split: str, n: int, rows: np.ndarray, inverse: np.ndarray
) -> None:
    """``{split}/repeats`` (placements of each of ``n`` sources) and ``{split}/pos`` of a
    resampled split: sorted sources ``rows`` shuffled, ``rows[k]`` at position
    ``inverse[k]``; positions by source, then position (a stable ``argsort`` of the order),
    a block of whole runs of one source at a time."""
    repeats = plan.create_dataset(f"{split}/repeats", (n,), index_dtype(len(rows)))
    for start in range(0, n, READ_JETS):
        stop = min(start + READ_JETS, n)
        lo, hi = np.searchsorted(rows, [start, stop])
        repeats[start:stop] = np.bincount(rows[lo:hi] - start, minlength=stop - start)
    pos, start = plan[f"{split}/pos"], 0
    while start < len(rows):
        stop = min(start + READ_JETS, len(rows))
        stop = int(np.searchsorted(rows, rows[stop - 1], side="right"))  # whole runs
        block = inverse[start:stop]
        pos[start:stop] = block[np.lexsort((block, rows[start:stop]))]
        start = stop


class JetSplits:
    """The jets' side of the split: their records in the merged ``dtype``
    (:meth:`convert`), what pass 1 of their shuffle counts (:meth:`observe`), the training
    weights fitted on their ordered splits (:meth:`fit`), each block's ``train_weight`` and
    summary sums as it is written (:meth:`finish`), and the summary."""

    def __init__(
        self,
        dtype: np.dtype,
        names: list[str],
        derived: Derived,
        contract: SplitContract,
        control: bool,
        variables: list[str],
        plot: bool,
    ) -> None:
        self.dtype, self.names, self.derived = dtype, names, derived
        self.weights = contract.prepare.weights
        self.negative = contract.prepare.negative_weights
        self.class_names, self.control, self.plot = list(contract.class_names), control, plot
        self.target = None
        if not control and self.weights.mode == "pt_to_signal":
            self.target = self.class_names.index(str(self.weights.target))
        self.variables = variables
        # per split: (sample, label) -> [jets, data jets], and the target's variable values
        self.groups: dict[str, dict[tuple[int, int], list[int]]] = {s: {} for s in SPLITS}
        targets = self.weights.variables if self.target is not None else ()
        self.target_values: dict[str, list[np.ndarray]] = {v: [] for v in targets}
        self.reweighter: Reweighter | None = None
        self.scale: dict[str, float | None] = {}
        self.sums: dict[str, dict[tuple[int, int], tuple[PairwiseSum, PairwiseSum]]] = {}
        self.shown: list[np.ndarray] = []

    def convert(self, inp: Input, block: np.ndarray, start: int) -> np.ndarray:
        labels = inp.labels[start : start + len(block)]
        return merged(inp, block, labels, self.dtype, self.names, self.derived)

    def observe(self, split: str, records: np.ndarray) -> None:
        """Count ``records`` (jets placed in ``split``, any order) by sample and class."""
        groups = self.groups[split]
        for i in np.unique(records["sample"]):
            part = records[records["sample"] == i]
            labels, counts = np.unique(part["flavour_label"], return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                n = groups.setdefault((int(i), label), [0, 0])
                n[0] += count
                if self.control:
                    n[1] += int(np.count_nonzero(part["is_data"][part["flavour_label"] == label]))
        if split == "train" and self.target is not None:
            is_target = records["flavour_label"] == self.target
            for v, values in self.target_values.items():
                values.append(records[v][is_target])

    def jets(self, split: str) -> int:
        return sum(n for n, _ in self.groups[split].values())

    def fit(self, ordered: Callable[..., Iterator[np.ndarray]]) -> None:
        """Training weights from the ordered splits (``ordered(split, fields)``: blocks in
        output order, see :func:`in_order`), as the whole-split functions of
        :mod:`~hepsnake.prepare.weights` would compute them."""
        if self.control:
            for s in SPLITS:
                n_data = sum(d for _, d in self.groups[s].values())
                total = PairwiseSum(self.jets(s) - n_data)
                for table in ordered(s, ["weight", "is_data"]):
                    mc = table[~table["is_data"]]
                    total.add(base_weights(mc, True, self.negative))
                self.scale[s] = control_scale(n_data, self.jets(s) - n_data, total.total())
        else:
            classes: dict[int, int] = {}
            for (_, label), (n, _) in self.groups["train"].items():
                classes[label] = classes.get(label, 0) + n
            targets = {v: np.concatenate(parts) for v, parts in self.target_values.items()}
            self.target_values = {}
            fields = ["flavour_label", "weight", *self.weights.variables]
            fields = list(dict.fromkeys(f for f in fields if f in self.dtype.names))
            self.reweighter = fit_reweighter(
                lambda: ordered("train", fields),
                classes,
                targets,
                self.weights,
                self.class_names,
                self.negative,
            )
        for s in SPLITS:
            self.sums[s] = {
                key: (PairwiseSum(n), PairwiseSum(n)) for key, (n, _) in self.groups[s].items()
            }

    def finish(self, split: str, start: int, table: np.ndarray) -> np.ndarray:
        """``table`` (jets of ``split`` from output position ``start``) with its
        ``train_weight``; adds it to the summary sums."""
        if self.control:
            scale = self.scale[split]
            table["train_weight"] = control_weights(table, table["is_data"], scale, self.negative)
        else:
            base = base_weights(table, self.weights.use_physics_weights, self.negative)
            table["train_weight"] = self.reweighter.apply(table, base)
        for (i, label), (weight, train_weight) in self.sums[split].items():
            sel = (table["sample"] == i) & (table["flavour_label"] == label)
            weight.add(table["weight"][sel].astype(np.float64))
            train_weight.add(table["train_weight"][sel].astype(np.float64))
        wanted = PLOT_JETS - sum(len(t) for t in self.shown)
        if self.plot and split == "train" and wanted > 0:
            fields = list(dict.fromkeys([*self.variables, "flavour_label", "train_weight"]))
            self.shown.append(repack_fields(table[fields][:wanted]))
        return table

    def plotted(self) -> np.ndarray:
        """The first :data:`PLOT_JETS` training jets' reweighting fields."""
        return np.concatenate(self.shown)

    def summary(self) -> dict[str, Any]:
        """Jets and summed weights per split, sample and class (the report's dataset table)."""
        rows = []
        for s in SPLITS:
            for key in sorted(self.groups[s]):
                (n, n_data), (weight, train_weight) = self.groups[s][key], self.sums[s][key]
                label = (
                    ("data" if n_data == n else "mc") if self.control else self.class_names[key[1]]
                )
                rows.append(
                    {
                        "split": s,
                        "sample": self.names[key[0]],
                        "class": label,
                        "jets": n,
                        "sum_weight": float(weight.total()),
                        "sum_train_weight": float(train_weight.total()),
                    }
                )
        return {"kind": "control" if self.control else "main", "rows": rows}


@dataclass
class Stream:
    """How the bucket shuffle (:func:`fill_buckets`) moves one dataset: the record dtype and
    slot shape of its buckets, ``convert`` (an input, a block of its rows, the block's first
    row) -> the block's records, ``observe`` (split, records placed in it) or None, and
    ``finish`` (split, first output position, records in output order) -> the records
    written."""

    dtype: np.dtype
    slots: tuple[int, ...]
    convert: Callable[[Input, np.ndarray, int], np.ndarray]
    finish: Callable[[str, int, np.ndarray], np.ndarray]
    observe: Callable[[str, np.ndarray], None] | None = None


def collection_stream(coll: str, ins: list[Input], inputs: Transforms) -> Stream:
    """A constituent collection: records as stored, then its ``inputs.transforms`` fields."""
    dtype, slots = collection_layout(coll, ins)
    derived = derived_fields(inputs, coll, set(dtype.names), ins[0].path)
    return Stream(
        dtype, slots, lambda inp, block, start: block, lambda s, i, t: with_derived(t, derived)
    )


def write_split_files(
    files: dict[str, h5py.File],
    ins: list[Input],
    jets: JetSplits,
    plan: h5py.File,
    n_out: dict[str, int],
    collections: list[str],
    contract: SplitContract,
    control: bool,
    scratch: Path,
    shuffle_bytes: int,
) -> None:
    """Jets (their weights fitted between the shuffle's two passes), then each constituent
    collection, through the bucket shuffle (:func:`fill_buckets`), its buckets in
    ``scratch``."""
    prep = contract.prepare
    writers = {k: TableWriter(f, prep.compression) for k, f in files.items()}
    streams = {"jets": Stream(jets.dtype, (), jets.convert, jets.finish, jets.observe)}
    streams |= {c: collection_stream(c, ins, contract.inputs) for c in collections}
    for name, stream in streams.items():
        with scratch_file(scratch / "buckets.h5") as buckets:
            rows = fill_buckets(name, stream, ins, plan, n_out, buckets, shuffle_bytes)
            pause_point("split.buckets_written")  # tests: the outputs and buckets are temporary
            if name == "jets":
                jets.fit(partial(in_order, buckets, rows))
            write_buckets(name, stream, buckets, rows, writers, prep.debug_jets)
        (scratch / "buckets.h5").unlink()
    names = sorted(inp.name for inp in ins)
    for key, h5 in files.items():
        h5["jets"].attrs["class_names"] = list(contract.class_names)
        h5["jets"].attrs["energy_unit"] = ins[0].energy_unit if ins else DEFAULT_UNIT
        h5["jets"].attrs["flavour_label"] = list(contract.class_names)
        set_attrs(
            h5,
            {
                "hepsnake_version": __version__,
                "split": key.removeprefix("debug_"),
                "kind": "control" if control else "main",
                "samples": names,
                "inputs": [inp.path for inp in ins],
                "prepare": to_data(prep),
            },
        )


def scratch_file(path: Path) -> h5py.File:
    """A new HDF5 file for the bucket shuffle, without HDF5's data sieve buffer: the shuffle's
    small writes to many places of a dataset would each read and write back 64 KiB of it (a
    10^7-jet split had written 113 GB, its buckets 25 GB, when stopped in its tracks' first
    pass); without it, each writes its own bytes."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_sieve_buf_size(0)
    return h5py.File(h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fapl=fapl))


def bucket_rows(row_bytes: int, most: int, shuffle_bytes: int) -> int:
    """Rows of a bucket (and of a block read) of the shuffle of ``most`` rows at most per
    split: ``shuffle_bytes`` of rows, more where the dataset is large.

    A block of ``r`` rows spreads over ``most / r`` buckets, ``r * r / most`` rows to each: with
    a fixed ``r`` the writes shrink and multiply as the square of the dataset (10^7 jets in
    16 MiB buckets: 14 rows of tracks per write, 0.7 million writes). A bucket of
    ``sqrt(most * shuffle_bytes / WRITES_PER_BUCKET / row_bytes)`` rows keeps a write at
    ``shuffle_bytes / WRITES_PER_BUCKET`` or more on average, its memory growing as the root of
    the dataset (27 MB of tracks at 10^7 jets, 86 MB at 10^8).
    """
    by_bytes = shuffle_bytes // row_bytes
    by_writes = math.isqrt(most * (shuffle_bytes // WRITES_PER_BUCKET) // row_bytes) + 1
    return max(1, min(max(by_bytes, by_writes), most))


def collection_layout(coll: str, ins: list[Input]) -> tuple[np.dtype, tuple[int, ...]]:
    """Record dtype and slot shape of ``coll``, which every input must share."""
    first = ins[0].h5[coll]
    for inp in ins[1:]:
        ds = inp.h5[coll]
        if ds.dtype != first.dtype or ds.shape[1:] != first.shape[1:]:
            raise HepsnakeError(
                inp.path,
                f"'{coll}' has {ds.shape[1:]} slots of {ds.dtype}, {ins[0].path} "
                f"{first.shape[1:]} of {first.dtype}",
            )
    return first.dtype, first.shape[1:]


def fill_buckets(
    coll: str,
    stream: Stream,
    ins: list[Input],
    plan: h5py.File,
    n_out: dict[str, int],
    scratch: h5py.File,
    shuffle_bytes: int = SHUFFLE_BYTES,
) -> int:
    """Pass 1 of the external two-pass bucket shuffle of dataset ``coll`` (records made by
    ``stream``): returns the rows of a bucket.

    Split ``s`` is every input's ``coll`` rows of that split, one input after the other,
    in the order of ``plan`` (:func:`ordering`; rows may repeat or be left out). Every input
    is read once, in blocks, and each row is appended, with its output position, to the
    bucket (``rows`` consecutive output positions, :func:`bucket_rows`) of every position it
    takes, in datasets ``s`` and ``s_pos`` of ``scratch``; :func:`in_order` reads them back
    one bucket at a time. Memory holds a block and a bucket, not the dataset.
    """
    dtype, slots = stream.dtype, stream.slots
    most = max(n_out.values())  # a bucket never needs more rows than a split
    rows = bucket_rows(dtype.itemsize * int(np.prod(slots)), most, shuffle_bytes)
    buckets = {s: scratch.create_dataset(s, (n_out[s], *slots), dtype) for s in SPLITS}
    places = {
        s: scratch.create_dataset(f"{s}_pos", (n_out[s],), plan[f"{s}/pos"].dtype) for s in SPLITS
    }
    filled = {s: np.zeros(-(-n_out[s] // rows), dtype=np.int64) for s in SPLITS}
    placed = dict.fromkeys(SPLITS, 0)  # entries of the plan's positions used, per split
    first = dict.fromkeys(SPLITS, 0)  # source index of the block's first row, per split
    for inp in ins:
        ds = inp.h5[coll]
        for start in range(0, ds.shape[0], rows):
            block = stream.convert(inp, ds[start : start + rows], start)
            which = inp.which[start : start + len(block)]
            for i, s in enumerate(SPLITS):
                picked = np.flatnonzero(which == i)
                sources = len(picked)
                if f"{s}/repeats" in plan:
                    picked = np.repeat(picked, plan[f"{s}/repeats"][first[s] : first[s] + sources])
                pos = plan[f"{s}/pos"][placed[s] : placed[s] + len(picked)]
                records = block[picked]
                if stream.observe:
                    stream.observe(s, records)
                to_buckets(buckets[s], places[s], filled[s], rows, pos, records)
                placed[s] += len(picked)
                first[s] += sources
    return rows


def in_order(
    scratch: h5py.File, rows: int, split: str, fields: list[str] | None = None
) -> Iterator[np.ndarray]:
    """Pass 2: split ``split`` of :func:`fill_buckets`' ``scratch``, a bucket (of ``rows``)
    at a time in output order; only ``fields`` of each record if given."""
    buckets, places = scratch[split], scratch[f"{split}_pos"]
    if fields:
        buckets = buckets.fields(fields)
    for start in range(0, places.shape[0], rows):
        region = buckets[start : start + rows]
        table = np.empty_like(region)
        table[places[start : start + len(region)] - start] = region
        yield table


def write_buckets(
    coll: str,
    stream: Stream,
    scratch: h5py.File,
    rows: int,
    writers: dict[str, TableWriter],
    n_debug: int,
) -> None:
    """Append dataset ``coll`` of each split from :func:`fill_buckets`' ``scratch``, its
    records finished by ``stream``, and its first ``n_debug`` to the debug writers."""
    for s in SPLITS:
        done = 0
        for table in in_order(scratch, rows, s):
            table = stream.finish(s, done, table)
            writers[s].append(coll, table)
            if f"debug_{s}" in writers and done < n_debug:
                writers[f"debug_{s}"].append(coll, table[: n_debug - done])
            done += len(table)


def to_buckets(
    ds: h5py.Dataset,
    places: h5py.Dataset,
    filled: np.ndarray,
    rows: int,
    pos: np.ndarray,
    records: np.ndarray,
) -> None:
    """Append ``records`` and their output positions ``pos`` to their buckets of ``rows``
    positions in ``ds`` and ``places``, keeping their order within a bucket; ``filled``
    counts the rows of each bucket."""
    grouped = np.argsort(pos // rows, kind="stable")
    pos, records = pos[grouped], records[grouped]
    bucket = pos // rows
    for a, b in itertools.pairwise(np.flatnonzero(np.diff(bucket, prepend=-1, append=-1))):
        at = int(bucket[a]) * rows + int(filled[bucket[a]])
        ds[at : at + b - a] = records[a:b]
        places[at : at + b - a] = pos[a:b]
        filled[bucket[a]] += b - a
