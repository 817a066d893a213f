"""Write a starter ``config.yaml`` and ``samples.tsv`` from the findings of ``inspect_file``.

The config is complete and standalone (no toy key): classes (:mod:`hepsnake.init.labels`), one
reader over every input file, convert cuts in the files' energy unit, inputs, the ``baseline``
model, evaluation (flavour-tagging working points for flavour classes) and one sample per file.
"""

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepsnake.config.contracts import reader as reader_spec
from hepsnake.convert.cuts import apply_cuts, cut_names
from hepsnake.errors import HepsnakeError
from hepsnake.init.combine import combine
from hepsnake.init.flat import strip
from hepsnake.init.info import FileInfo
from hepsnake.init.inspect import inspect_file
from hepsnake.init.labels import Labels, choose
from hepsnake.io.atomic import atomic_path
from hepsnake.io.sources import open_source
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.split import SPLITS

MODEL = "baseline"  # the shipped DeepSets model, for inputs with constituent collections
JETS_ONLY_MODEL = "dense"  # the shipped MLP on jet variables, for inputs with none
PROBABILITY = {"bjets": "pb", "cjets": "pc", "ujets": "pu"}  # PHYSLITE score suffixes
ATLAS_TRUTH = [
    "HadronConeExclTruthLabelID",
    "HadronConeExclExtendedTruthLabelID",
    "PartonTruthLabelID",
    "ConeTruthLabelID",
]
PHYSLITE_TRACK_INPUTS = ["pt", "deta", "dphi", "d0", "z0SinTheta"]
PHYSLITE_TRACK_HITS = ["numberOfPixelHits", "numberOfSCTHits"]
FTAG_WORKING_POINTS = [0.6, 0.7, 0.77, 0.85]
# never a training input: truth, labels, weights, identifiers, index links, absolute phi
NOT_INPUT = re.compile(
    r"truth|label|flavou?r|pdgid|weight|^(event|run|lumi)|(idx|index)\d*$|^phi$", re.I
)


# experiment label of the evaluation plots, by reader (plain plots for other flat ntuples)
PLOT_STYLES = {
    "physlite": {"experiment": "ATLAS", "simulation": True, "label": "Internal"},
    "nanoaod": {"experiment": "CMS", "simulation": True, "label": "Open Data"},
}


def batch_size(n_jets: int) -> int:
    """A batch giving about 20 optimiser steps per epoch on 80 % of ``n_jets`` (16..1000)."""
    return max(16, min(1000, int(0.8 * n_jets) // 20))


def physlite_parts(info: FileInfo) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(reader, inputs, notes) of a PHYSLITE file."""
    reader: dict[str, Any] = {"type": "physlite"}
    if info.tree:
        reader["tree"] = info.tree
    jets = ["pt", "eta", "phi", "m"] + ([info.label] if info.label else [])
    reader["jets"] = jets
    hits = [
        h
        for h in PHYSLITE_TRACK_HITS
        if f"InDetTrackParticlesAuxDyn{info.jet_prefix[-1]}{h}" in info.keys
    ]
    defaults = reader_spec({"type": "physlite"})
    reader["tracks"] = [v for v in defaults.tracks if v not in PHYSLITE_TRACK_HITS]
    reader["tracks"] += hits
    notes = []
    if info.btag_container:
        reader["btagging"] = {"container": info.btag_container, "variables": info.taggers}
        notes.append(
            f"reference tagger scores {', '.join(info.taggers)} from {info.btag_container} "
            "through btaggingLink"
        )
    inputs = {
        "variables": {"jets": ["pt", "eta"], "tracks": [*PHYSLITE_TRACK_INPUTS, *hits]},
        "num_inputs": {"tracks": 20},
        "transforms": {"jets": {"pt": "log1p"}, "tracks": {"pt": "log1p"}},
    }
    return reader, inputs, notes


def flat_parts(info: FileInfo) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(reader, inputs, notes) of a flat ntuple: every jet variable and constituent variable
    found is read; the inputs are those that are no truth, label, weight, identifier, tagger
    score, absolute phi or constant within a file."""
    jets: dict[str, str] = {**info.kinematics, **info.variables}
    if info.label:
        jets[strip(info.jet_prefix, info.label)] = info.label
    for tagger in info.taggers:
        jets[strip(info.jet_prefix, tagger)] = tagger
    if info.weight:
        jets["mcEventWeight"] = info.weight
    if info.event_number:
        jets["eventNumber"] = info.event_number
    reader: dict[str, Any] = {
        "type": "flat",
        "tree": info.tree,
        "entry": info.entry,
        "unit": info.unit,
        "jets": jets,
    }
    collections = {**info.collections, **info.links}
    if collections:
        reader["collections"] = collections
    skip = {info.label, *info.taggers, info.weight, info.event_number, *info.constants}
    variables = {"jets": [v for v, b in jets.items() if b not in skip and not NOT_INPUT.search(v)]}
    for name, coll in collections.items():
        fields = coll.get("variables", coll)
        variables[name] = [v for v in fields if not NOT_INPUT.search(v)]
    notes = list(info.notes)
    constant = sorted(v for v, b in jets.items() if b in info.constants)
    if constant:
        notes.append(f"one value per file, so not an input: {', '.join(constant)}")
    transforms: dict[str, dict[str, str]] = {}
    for name, inputs in variables.items():
        energy = next((v for v in ("pt", "e") if v in inputs), None)
        if energy:
            transforms[name] = {energy: "log1p"}
    return reader, {"variables": variables, "transforms": transforms}, notes


def reference_taggers(
    info: FileInfo, reader: dict[str, Any], classes: list[str]
) -> dict[str, dict[str, Any]]:
    """``evaluate.reference_taggers`` for the scores the reader stores: PHYSLITE class
    probabilities (``GN2v01_pb/pc/pu``), flat single discriminants (``btagCSVV2``)."""
    if info.reader == "physlite":
        if not info.taggers:
            return {}
        name = info.taggers[0].rsplit("_", 1)[0]
        probabilities = {c: f"{name}_{PROBABILITY[c]}" for c in classes}
        return {name: {"probabilities": probabilities}}
    stored = {b: v for v, b in reader["jets"].items() if not v.startswith("truth")}
    return {stored[t]: {"score": stored[t]} for t in info.taggers if t in stored}


SMALL_FILE = 1000  # entries: below this the split fractions and seed are checked on the files
SMALL_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def class_masks(values: np.ndarray, mapping: dict[str, Any]) -> list[np.ndarray]:
    """Per class of ``mapping`` (not ``drop``), which ``values`` it takes (lists, ranges)."""
    masks = []
    for name, spec in mapping.items():
        if name == "drop":
            continue
        items = spec if isinstance(spec, list) else [spec]
        mask = np.zeros(len(values), dtype=bool)
        for item in items:
            if isinstance(item, dict):
                lo, hi = item["range"]
                mask |= (values >= lo) & (values < hi)
            else:
                mask |= values == item
        masks.append(mask)
    return masks


def jet_classes(
    path: str, config: dict[str, Any], labels: Labels, file_class: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(event number, class index or -1) of each jet of ``path`` passing the cuts."""
    reader = next(iter(config["readers"].values()))
    cuts = config["convert"]["cuts"]
    events, classes = [], []
    source = open_source(path, reader_spec(reader), None, 0, cut_names(cuts))
    for _, chunk in source.chunks(100000):
        mask, _ = apply_cuts(chunk.jets, cuts, path, chunk.aux)
        events.append(chunk.jets["eventNumber"][mask])
        index = np.full(int(mask.sum()), -1)
        if file_class is not None:
            index[:] = labels.classes.index(file_class)
        else:
            assert labels.label_map is not None
            values = chunk.jets[labels.label_map["variable"]][mask]
            for i, which in enumerate(class_masks(values, labels.label_map["map"])):
                index[which] = i
        classes.append(index)
    return np.concatenate(events), np.concatenate(classes)


def small_file_split(
    infos: list[FileInfo], config: dict[str, Any], rows: list[dict[str, str]], labels: Labels
) -> tuple[dict[str, float], int] | None:
    """For small files: fractions 0.6/0.2/0.2 and the first seed from 42 whose event-hash
    split gives every split at least one jet of every class after the cuts (None: the
    defaults, for files of at least SMALL_FILE entries in all or when no seed of 42..141
    does)."""
    if sum(i.entries for i in infos) >= SMALL_FILE:
        return None
    per_file = labels.per_file or [None] * len(infos)
    jets = [
        (row["name"], *jet_classes(info.path, config, labels, cls))
        for info, row, cls in zip(infos, rows, per_file, strict=True)
    ]
    fractions = [SMALL_FRACTIONS[s] for s in SPLITS]
    for seed in range(42, 142):
        seen: set[tuple[int, int]] = set()
        for sample, events, classes in jets:
            which = assign_splits(event_uniform(sample, events, seed), fractions)
            known = classes >= 0
            seen |= set(zip(classes[known].tolist(), which[known].tolist(), strict=True))
        if len(seen) == len(labels.classes) * len(SPLITS):
            return SMALL_FRACTIONS, seed
    return None


def sample_rows(infos: list[FileInfo], reader_name: str, labels: Labels) -> list[dict[str, str]]:
    """One sample-sheet row per file: its name (the file's stem, made unique), the file, the
    reader, and the class when files are classes."""
    rows: list[dict[str, str]] = []
    taken: set[str] = set()
    for i, info in enumerate(infos):
        # the sample name pattern ($defs/name): letters, digits, _ . - and a letter or digit first
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(info.path).stem)
        stem = stem if stem[:1].isalnum() else f"s{stem}"
        name, n = stem, 2
        while name in taken:
            name, n = f"{stem}_{n}", n + 1
        taken.add(name)
        row = {"name": name, "files": str(Path(info.path).resolve()), "reader": reader_name}
        row["role"] = "train"
        if labels.per_file:
            row["label"] = labels.per_file[i]
        rows.append(row)
    return rows


def starter(
    infos: list[FileInfo], out: Path, classes_given: list[str | None], label_given: bool
) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    """(config, sample-sheet rows, notes on what was found and chosen) for the files."""
    info = combine(infos)
    mev = info.reader == "physlite" or info.unit == "MeV"
    if info.reader == "physlite":
        reader, inputs, notes = physlite_parts(info)
        reader_name = "physlite"
    else:
        reader, inputs, notes = flat_parts(info)
        reader_name = "nanoaod" if "Jet_hadronFlavour" in info.keys else "flat"
    labels = choose(info, reader, classes_given, [i.path for i in infos], label_given)
    notes += labels.notes
    unit = "MeV" if mev else "GeV"
    scale = 1000.0 if mev else 1.0
    cuts = [f"pt > {20 * scale:g}", "abs(eta) < 2.5"]
    if not mev and "Jet_jetId" in info.keys:
        cuts.append("Jet_jetId >= 2")  # a cut on a raw branch that is not stored
    truth = [labels.variable] if labels.variable else []
    inputs["truth"] = list(dict.fromkeys([*ATLAS_TRUTH, *truth]))
    collections = [c for c in inputs["variables"] if c != "jets"]
    num_inputs = inputs.get("num_inputs", {})
    model = MODEL if collections else JETS_ONLY_MODEL
    flavours = labels.signal == "bjets"
    references = reference_taggers(info, reader, labels.classes) if flavours else {}
    evaluate: dict[str, Any] = {"signal": labels.signal}
    if flavours:
        evaluate["working_points"] = FTAG_WORKING_POINTS
    evaluate |= {
        "pt_bins": [20 * scale, 50 * scale, 100 * scale, 10000 * scale],
        "reference_taggers": references,
        "plot_style": PLOT_STYLES.get(reader_name),
    }
    prepare: dict[str, Any] = {"fractions": {"train": 0.8, "val": 0.1, "test": 0.1}}
    if labels.label_map:
        prepare["label_map"] = labels.label_map
    prepare["weights"] = {"mode": "none"}
    config: dict[str, Any] = {
        "class_names": labels.classes,
        "samples": str(out.resolve() / "samples.tsv"),
        "readers": {reader_name: reader},
        "convert": {
            "max_constituents": {c: info.slots.get(c, num_inputs.get(c, 2)) for c in collections},
            "sort_by": {c: sort_key(inputs["variables"][c]) for c in collections},
            "cuts": cuts,
            "chunk_size": 100000,
            "skip_bad_files": False,
        },
        "inputs": inputs,
        "models": [model],
        "model_dir": "config/models",
        "training_overrides": {"batch_size": batch_size(info.jets)},
        "evaluate": evaluate,
        "prepare": prepare,
    }
    rows = sample_rows(infos, reader_name, labels)
    split = small_file_split(infos, config, rows, labels)
    if split is not None:
        config["prepare"]["fractions"], config["prepare"]["seed"] = split
        notes.append(
            f"{info.entries} entries only: fractions {split[0]} and seed {split[1]}, the first "
            "seed whose split holds jets of every class in train, val and test"
        )
    notes.append(f"energy unit {unit}: cuts {cuts}, pt bins {evaluate['pt_bins']}")
    notes.append(
        f"reference taggers {list(references) or 'none'}; model '{model}' on inputs "
        f"{inputs['variables']}; batch size {config['training_overrides']['batch_size']} "
        f"for {info.jets} jets"
    )
    return config, rows, notes


def sort_key(variables: list[str]) -> str:
    """The variable constituents are sorted by: pt, else e, else the first."""
    return next((v for v in ("pt", "e") if v in variables), variables[0])


def header(sources: list[str], infos: list[FileInfo], notes: list[str]) -> str:
    """The comment block opening the written config: what was found and chosen."""
    first = infos[0]
    lines = [
        f"hepsnake starter config, written by `hepsnake init --from {' '.join(sources)}`.",
        "Every key is documented in config/README.md. Run from the repository root:",
        "  snakemake --cores 2 --configfile <this file>",
        "",
        f"Found: {first.reader} file, tree '{first.tree}' ({first.entries} entries, "
        f"{first.jets} jets); trees {first.trees}",
    ]
    if len(infos) > 1:
        lines.append(
            f"Found: {len(infos)} files, {sum(i.entries for i in infos)} entries and "
            f"{sum(i.jets for i in infos)} jets in all"
        )
    lines += [f"Chosen: {n}" for n in notes]
    # names read from the file never break out of the comment
    return "".join(f"# {' '.join(line.splitlines())}".rstrip() + "\n" for line in lines)


def parse_source(text: str) -> tuple[str | None, str]:
    """``CLASS=FILE`` -> (CLASS, FILE); a plain file (or an existing path with ``=``) -> (None,
    FILE)."""
    cls, sep, path = text.partition("=")
    if not sep or Path(text).exists():
        return None, text
    return cls, path


def write_starter(
    sources: str | list[str],
    out: str | Path,
    reader: str | None = None,
    force: bool = False,
    tree: str | None = None,
    label: str | None = None,
) -> list[str]:
    """Inspect each of ``sources`` (``FILE`` or ``CLASS=FILE``) and write ``out/config.yaml``
    and ``out/samples.tsv``; return the lines describing what was found and chosen.
    Existing files need ``force``."""
    out = Path(out)
    sources = [sources] if isinstance(sources, str) else list(sources)
    targets = [out / "config.yaml", out / "samples.tsv"]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise HepsnakeError(existing[0], "exists (use --force to replace it)")
    parsed = [parse_source(s) for s in sources]
    for _, path in parsed:
        if re.search(r"[\s,]", str(Path(path).resolve())):
            # the sample sheet separates files by spaces and commas
            raise HepsnakeError(path, "a path with spaces or commas cannot go in a sample sheet")
    infos = [inspect_file(path, reader, tree, label) for _, path in parsed]
    config, rows, notes = starter(infos, out, [c for c, _ in parsed], label is not None)
    out.mkdir(parents=True, exist_ok=True)
    text = header(sources, infos, notes) + yaml.safe_dump(
        config, sort_keys=False, width=100, default_flow_style=None
    )
    sheet = "\t".join(rows[0]) + "\n" + "".join("\t".join(r.values()) + "\n" for r in rows)
    with atomic_path(targets[0]) as tmp_config, atomic_path(targets[1]) as tmp_sheet:
        tmp_config.write_text(text)
        tmp_sheet.write_text(sheet)
    found = header(sources, infos, notes).splitlines()[4:]
    return [line.removeprefix("# ") for line in found] + [f"wrote {targets[0]} and {targets[1]}"]
