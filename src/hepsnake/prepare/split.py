"""The ``split`` stage: event-level train/val/test splits, merged, shuffled and weighted."""

import itertools
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake import __version__
from hepsnake.config import check_prepare, label_intervals
from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import atomic_path, json_text
from hepsnake.io.h5 import DEFAULT_UNIT, TableWriter, set_attrs
from hepsnake.names import transformed_field
from hepsnake.prepare.duplicates import unique_rows
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.weights import base_weights, control_weights, fit_reweighter, resample

SPLITS = ("train", "val", "test")
SHUFFLE_BYTES = 16 << 20  # block read and bucket size of the collection shuffle


class Input:
    """One converted sample: its open file, jet dtype, labels and per-split row selections.

    Only per-jet columns are held (labels, rows); the jet records are read in blocks."""

    def __init__(self, path: str, config: dict[str, Any], control: bool) -> None:
        """Open ``path`` and read its jets; the file stays open until :meth:`close` (closed
        again at once if reading fails)."""
        self.path = path
        try:
            self.h5 = h5py.File(path, "r")
        except OSError as exc:
            raise HepsnakeError(path, f"not a readable HDF5 file ({exc})") from exc
        try:
            self.read(config, control)
        except BaseException:
            self.h5.close()
            raise

    def __enter__(self) -> "Input":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.h5.close()

    def read(self, config: dict[str, Any], control: bool) -> None:
        """Labels and the per-split rows of the open file."""
        if "jets" not in self.h5:
            raise HepsnakeError(self.path, "no 'jets' dataset")
        self.name = str(self.h5.attrs.get("sample", Path(self.path).stem))
        sample = next((s for s in config["samples"] if s["name"] == self.name), None)
        if sample is None:
            raise HepsnakeError(self.path, f"sample '{self.name}' is not in the config")
        jets = self.h5["jets"]
        self.dtype, self.n_jets = jets.dtype, jets.shape[0]
        self.energy_unit = str(jets.attrs.get("energy_unit", DEFAULT_UNIT))
        if self.n_jets == 0:
            raise HepsnakeError(self.path, "empty sample: no jets")
        self.labels = self.columns(["flavour_label"])["flavour_label"]
        self.keep = np.ones(self.n_jets, dtype=bool)
        self.is_data = control and sample.get("label") == "data"
        self.dropped = 0  # jets the label map removes
        if not control:
            self.relabel(config["prepare"].get("label_map"), config["class_names"])
        prep = config["prepare"]
        if sample["role"] == "test":
            which = np.full(self.n_jets, SPLITS.index("test"))
        else:
            events = self.columns(["eventNumber"])["eventNumber"]
            u = event_uniform(self.name, events, prep["seed"])
            which = assign_splits(u, [prep["fractions"][s] for s in SPLITS])
        index = index_dtype(self.n_jets)
        self.rows = {
            s: np.flatnonzero((which == i) & self.keep).astype(index) for i, s in enumerate(SPLITS)
        }
        self.collections = sorted(k for k in self.h5 if k != "jets")

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

    def relabel(self, label_map: dict[str, Any] | None, class_names: list[str]) -> None:
        """Apply ``prepare.label_map`` to jets without a sample label: ``drop`` jets (and with
        ``unmapped: drop`` jets in no class) leave, counted in ``dropped``; a value in no class
        is an error otherwise, and so is a map that leaves no jet of the file."""
        unlabelled = self.labels < 0
        if not unlabelled.any():
            return
        if not label_map:
            raise HepsnakeError(
                self.path, "jets have no class label and prepare.label_map is unset"
            )
        variable = label_map["variable"]
        if variable not in self.dtype.names:
            raise HepsnakeError(self.path, f"label_map variable '{variable}' is not a jet field")
        raw = self.columns([variable])[variable]
        mapped = np.full(len(raw), UNMAPPED, dtype=np.int32)
        for cls, spec in label_map["map"].items():
            mapped[in_class(raw, spec)] = DROP if cls == "drop" else class_names.index(cls)
        mapped = np.where(unlabelled, mapped, self.labels)
        missing = mapped == UNMAPPED
        if missing.any() and label_map["unmapped"] == "error":
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
        self.keep &= ~removed


DROP, UNMAPPED = -2, -3  # label-map codes of jets that leave


def index_dtype(n: int) -> np.dtype:
    """The integer type of row indices below ``n``: int32 where it fits (half the memory)."""
    return np.dtype(np.int32 if n < 2**31 else np.int64)


def in_class(raw: np.ndarray, spec: list[Any] | dict[str, Any]) -> np.ndarray:
    """Whether each value of ``raw`` is one of a label-map class's values or ranges
    (``[lo, hi)``)."""
    mask = np.zeros(len(raw), dtype=bool)
    for lo, hi in label_intervals(spec):
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


def derived_fields(inputs: dict[str, Any], dataset: str, raw: set[str], where: str) -> Derived:
    """The ``inputs.transforms`` fields written to prepared ``dataset`` (fields ``raw``): each
    named by :func:`~hepsnake.names.transformed_field`; the variable must be a field, the
    transformed name must not."""
    out: Derived = {}
    for coll, per in inputs["transforms"].items():
        if inputs["input_map"].get(coll, coll) != dataset:
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


def union_dtype(inputs: list[Input], control: bool, derived: Derived) -> np.dtype:
    """Every jet field of every input (first-seen order), the ``derived`` fields, then sample,
    weights and is_data."""
    fields: dict[str, np.dtype] = {}
    for inp in inputs:
        for name in inp.dtype.names:
            fields.setdefault(name, inp.dtype[name])
    fields.update(dict.fromkeys(derived, np.dtype(np.float32)))
    fields["sample"] = np.dtype(np.int16)
    fields["train_weight"] = np.dtype(np.float32)
    if control:
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
    if "is_data" in dtype.names:
        part["is_data"] = inp.is_data
    return part


WORK_FIELDS = ("flavour_label", "weight", "sample", "train_weight", "is_data")


def work_tables(
    inputs: list[Input], dtype: np.dtype, names: list[str], variables: list[str]
) -> dict[str, np.ndarray]:
    """Per split, the jets of every input in one table of only the fields weights, ordering
    and summary read (:data:`WORK_FIELDS` and ``variables``, those of ``dtype``): ~20 bytes
    a jet, where the jet records (written by :func:`shuffle_collection`) stay on disk."""
    wanted = {*WORK_FIELDS, *variables}
    work = np.dtype([(n, dtype[n]) for n in dtype.names if n in wanted])
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for inp in inputs:
        columns = inp.columns([n for n in work.names if n in inp.dtype.names])
        for s in SPLITS:
            rows = inp.rows[s]
            parts[s].append(merged(inp, columns[rows], inp.labels[rows], work, names, {}))
    return {s: np.concatenate(p) for s, p in parts.items()}


def split(
    config: dict[str, Any],
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
    splits. ``train_weight`` follows ``prepare.weights`` (control samples: MC normalised to
    data). ``prepare.resample`` resamples the training split by
    class instead; its jets then keep their base weights (physics weights or 1). A failure
    leaves no output. Returns the summary written to ``summary_path``.

    Memory: per jet only its labels, row indices and the :func:`work_tables` fields; jets and
    constituents go through :func:`shuffle_collection` in blocks of ``shuffle_bytes``.
    """
    prep = config["prepare"]
    check_prepare(config)
    with ExitStack() as stack:
        # entered first, so renamed last: the summary appears only after every split file
        tmp_summary = stack.enter_context(atomic_path(summary_path))
        ins = [stack.enter_context(Input(p, config, control)) for p in inputs]
        for inp in ins[1:]:
            if inp.energy_unit != ins[0].energy_unit:
                raise HepsnakeError(
                    inp.path,
                    f"energy unit {inp.energy_unit}, but {ins[0].path} is in"
                    f" {ins[0].energy_unit}: convert every sample in one unit",
                )
        for inp, keep in zip(ins, unique_rows(ins, prep["deduplicate"]), strict=True):
            inp.rows = {s: rows[keep[rows]] for s, rows in inp.rows.items()}
        weights = prep["weights"]
        reweighted = not control and (weights["mode"] != "none" or plot)
        if reweighted:
            for inp in ins:
                inp.require_fields(weights["variables"], "prepare.weights.variables")
        collections = ins[0].collections
        for inp in ins[1:]:
            if inp.collections != collections:
                raise HepsnakeError(inp.path, f"collections {inp.collections} != {collections}")
        names = sorted(inp.name for inp in ins)
        jet_fields = {n for inp in ins for n in inp.dtype.names}
        derived = derived_fields(config["inputs"], "jets", jet_fields, ins[0].path)
        dtype = union_dtype(ins, control, derived)
        variables = (list(weights["variables"]) or ["pt"]) if reweighted else []
        jets = work_tables(ins, dtype, names, variables)
        for s in SPLITS:
            if len(jets[s]) == 0:
                raise HepsnakeError(f"split '{s}'", "no jets: check fractions and inputs")
        order = ordering(jets, prep, control)
        reweighter = None
        for s in SPLITS:
            jets[s] = jets[s][order[s]]
        if control:
            for s in SPLITS:
                jets[s]["train_weight"] = control_weights(jets[s], jets[s]["is_data"])
        else:
            reweighter = fit_reweighter(jets["train"], prep["weights"], config["class_names"])
            for s in SPLITS:
                base = base_weights(jets[s], prep["weights"]["use_physics_weights"])
                jets[s]["train_weight"] = reweighter.apply(jets[s], base)
        targets = {s: outputs[s] for s in SPLITS}
        if debug:
            targets.update({f"debug_{s}": debug[s] for s in SPLITS})
        files = {}
        for key, path in targets.items():
            tmp = stack.enter_context(atomic_path(path))
            files[key] = stack.enter_context(h5py.File(tmp, "w"))
        stream = jet_stream(dtype, names, derived, jets)
        write_split_files(files, ins, stream, order, collections, config, control, shuffle_bytes)
        report = split_summary(jets, names, config["class_names"], control)
        report["dropped"] = {"label_map": sum(inp.dropped for inp in ins)}
        if plot and reweighter is not None:
            from hepsnake.prepare.plots import plot_reweighting

            plot_reweighting(jets["train"], prep["weights"], config["class_names"], plot)
        tmp_summary.write_text(json_text(report))
    return report


def ordering(
    jets: dict[str, np.ndarray], prep: dict[str, Any], control: bool
) -> dict[str, np.ndarray]:
    """Per split, the row order to write: optional resampling (train), then a seeded shuffle."""
    order = {}
    for i, s in enumerate(SPLITS):
        rng = np.random.default_rng([prep["seed"], i, int(control)])
        index = index_dtype(len(jets[s]))
        rows = np.arange(len(jets[s]), dtype=index)
        if s == "train" and not control and prep["resample"] != "none":
            rows = resample(jets[s]["flavour_label"], prep["resample"], rng).astype(index)
        order[s] = rows[rng.permutation(len(rows))]
    return order


@dataclass
class Stream:
    """How :func:`shuffle_collection` moves one dataset: the record dtype and slot shape of
    its buckets, ``convert`` (an input, a block of its rows, the block's first row) -> the
    block's records, and ``finish`` (split, first output position, records in output order)
    -> the records written."""

    dtype: np.dtype
    slots: tuple[int, ...]
    convert: Callable[[Input, np.ndarray, int], np.ndarray]
    finish: Callable[[str, int, np.ndarray], np.ndarray]


def jet_stream(
    dtype: np.dtype, names: list[str], derived: Derived, work: dict[str, np.ndarray]
) -> Stream:
    """The jets: merged into ``dtype`` (:func:`merged`), with ``train_weight`` from the
    ordered ``work`` tables."""

    def convert(inp: Input, block: np.ndarray, start: int) -> np.ndarray:
        labels = inp.labels[start : start + len(block)]
        return merged(inp, block, labels, dtype, names, derived)

    def finish(split: str, start: int, table: np.ndarray) -> np.ndarray:
        table["train_weight"] = work[split]["train_weight"][start : start + len(table)]
        return table

    return Stream(dtype, (), convert, finish)


def collection_stream(coll: str, ins: list[Input], inputs: dict[str, Any]) -> Stream:
    """A constituent collection: records as stored, then its ``inputs.transforms`` fields."""
    dtype, slots = collection_layout(coll, ins)
    derived = derived_fields(inputs, coll, set(dtype.names), ins[0].path)
    return Stream(
        dtype, slots, lambda inp, block, start: block, lambda s, i, t: with_derived(t, derived)
    )


def write_split_files(
    files: dict[str, h5py.File],
    ins: list[Input],
    jets: Stream,
    order: dict[str, np.ndarray],
    collections: list[str],
    config: dict[str, Any],
    control: bool,
    shuffle_bytes: int,
) -> None:
    """Jets, then each constituent collection, through :func:`shuffle_collection`."""
    prep = config["prepare"]
    writers = {k: TableWriter(f, prep["compression"]) for k, f in files.items()}
    scratch = Path(next(iter(files.values())).filename).parent
    streams = {"jets": jets} | {c: collection_stream(c, ins, config["inputs"]) for c in collections}
    for name, stream in streams.items():
        with tempfile.TemporaryDirectory(prefix=".split-", dir=scratch) as tmp:
            shuffle_collection(
                name,
                stream,
                ins,
                order,
                writers,
                prep["debug_jets"],
                Path(tmp) / "buckets.h5",
                shuffle_bytes,
            )
    names = sorted(inp.name for inp in ins)
    for key, h5 in files.items():
        h5["jets"].attrs["class_names"] = config["class_names"]
        h5["jets"].attrs["energy_unit"] = ins[0].energy_unit if ins else DEFAULT_UNIT
        h5["jets"].attrs["flavour_label"] = config["class_names"]
        set_attrs(
            h5,
            {
                "hepsnake_version": __version__,
                "split": key.removeprefix("debug_"),
                "kind": "control" if control else "main",
                "samples": names,
                "inputs": [inp.path for inp in ins],
                "prepare": prep,
            },
        )


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


def shuffle_collection(
    coll: str,
    stream: Stream,
    ins: list[Input],
    order: dict[str, np.ndarray],
    writers: dict[str, TableWriter],
    n_debug: int,
    scratch: Path,
    shuffle_bytes: int = SHUFFLE_BYTES,
) -> None:
    """Append dataset ``coll`` of each split, in ``order``, by an external two-pass bucket
    shuffle, its records made by ``stream``.

    Split ``s`` is ``concatenate([inp.h5[coll][inp.rows[s]] for inp in ins])[order[s]]``
    (rows may repeat or be left out). Pass 1 reads every input once, in blocks, and appends
    each row to the bucket (``rows`` consecutive output positions, ~``shuffle_bytes``) of
    every position it takes, in a scratch HDF5 file; pass 2 reads one bucket at a time, puts
    it in output order and appends it. Memory holds a block and a bucket, not the dataset.
    """
    dtype, slots = stream.dtype, stream.slots
    most = max(len(o) for o in order.values())  # a bucket never needs more rows than a split
    rows = max(1, min(shuffle_bytes // (dtype.itemsize * int(np.prod(slots))), most))
    with h5py.File(scratch, "w") as h5:
        buckets = {s: h5.create_dataset(s, (len(order[s]), *slots), dtype) for s in SPLITS}
        # output positions sorted by source row (ties: by position): the arrival order
        by_source = {s: np.argsort(order[s], kind="stable").astype(order[s].dtype) for s in SPLITS}
        sources = {s: order[s][by_source[s]] for s in SPLITS}
        filled = {s: np.zeros(-(-len(order[s]) // rows), dtype=np.int64) for s in SPLITS}
        first = dict.fromkeys(SPLITS, 0)  # source index of the input's first row, per split
        for inp in ins:
            ds = inp.h5[coll]
            for start in range(0, ds.shape[0], rows):
                block = stream.convert(inp, ds[start : start + rows], start)
                for s in SPLITS:
                    picked = inp.rows[s]
                    lo, hi = np.searchsorted(picked, [start, start + len(block)])
                    k0, k1 = np.searchsorted(sources[s], [first[s] + lo, first[s] + hi])
                    pos, src = by_source[s][k0:k1], sources[s][k0:k1]
                    records = block[picked[src - first[s]] - start]
                    to_buckets(buckets[s], filled[s], rows, pos, records)
            for s in SPLITS:
                first[s] += len(inp.rows[s])
        for s in SPLITS:
            done = 0
            for start in range(0, len(order[s]), rows):
                region = buckets[s][start : start + rows]
                table = np.empty_like(region)
                table[np.argsort(order[s][start : start + len(region)], kind="stable")] = region
                table = stream.finish(s, start, table)
                writers[s].append(coll, table)
                if f"debug_{s}" in writers and done < n_debug:
                    writers[f"debug_{s}"].append(coll, table[: n_debug - done])
                done += len(table)


def to_buckets(
    ds: h5py.Dataset, filled: np.ndarray, rows: int, pos: np.ndarray, records: np.ndarray
) -> None:
    """Append ``records`` (output positions ``pos``) to their buckets of ``rows`` positions in
    ``ds``, keeping their order within a bucket; ``filled`` counts the rows of each bucket."""
    grouped = np.argsort(pos // rows, kind="stable")
    bucket, records = pos[grouped] // rows, records[grouped]
    for a, b in itertools.pairwise(np.flatnonzero(np.diff(bucket, prepend=-1, append=-1))):
        at = int(bucket[a]) * rows + int(filled[bucket[a]])
        ds[at : at + b - a] = records[a:b]
        filled[bucket[a]] += b - a


def split_summary(
    jets: dict[str, np.ndarray], names: list[str], class_names: list[str], control: bool
) -> dict[str, Any]:
    """Jets and summed weights per split, sample and class (the report's dataset table)."""
    rows = []
    for s in SPLITS:
        table = jets[s]
        for i, name in enumerate(names):
            in_sample = table["sample"] == i
            for cls in np.unique(table["flavour_label"][in_sample]):
                sel = in_sample & (table["flavour_label"] == cls)
                label = (
                    "data"
                    if control and table["is_data"][sel].all()
                    else ("mc" if control else class_names[int(cls)])
                )
                rows.append(
                    {
                        "split": s,
                        "sample": name,
                        "class": label,
                        "jets": int(sel.sum()),
                        "sum_weight": float(table["weight"][sel].astype(np.float64).sum()),
                        "sum_train_weight": float(
                            table["train_weight"][sel].astype(np.float64).sum()
                        ),
                    }
                )
    return {"kind": "control" if control else "main", "rows": rows}
