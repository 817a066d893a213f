"""Write a starter ``config.yaml`` and ``samples.tsv`` from the findings of ``inspect_file``.

The config is complete and standalone (no toy key): classes from the file's truth label, one
reader, convert cuts in the file's energy unit, inputs, the ``baseline`` model, evaluation
with flavour-tagging working points and a ``label_map`` from the label branch.
"""

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepsnake.convert.cuts import apply_cuts, cut_names
from hepsnake.errors import HepsnakeError
from hepsnake.init.inspect import FileInfo, inspect_file
from hepsnake.io.atomic import atomic_path
from hepsnake.io.physlite import DEFAULTS as PHYSLITE_DEFAULTS
from hepsnake.io.sources import open_source
from hepsnake.prepare.hashing import assign_splits, event_uniform
from hepsnake.prepare.split import SPLITS

# flavour classes (FTAG names) and the truth-label values of each; 15 (tau) is dropped
FLAVOURS: dict[str, list[int]] = {"ujets": [0, 1, 2, 3, 21], "cjets": [4], "bjets": [5]}
DROPPED = [15]
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


# experiment label of the evaluation plots, by reader (plain plots for other flat ntuples)
PLOT_STYLES = {
    "physlite": {"experiment": "ATLAS", "simulation": True, "label": "Internal"},
    "nanoaod": {"experiment": "CMS", "simulation": True, "label": "Open Data"},
}


def flavour_map(values: dict[int, int]) -> tuple[list[str], dict[str, list[int]]]:
    """The classes present among the label ``values`` and the class -> values map
    (unlisted values seen in the file, and taus, go to ``drop``)."""
    classes = [c for c, vals in FLAVOURS.items() if any(v in values for v in vals)]
    mapping: dict[str, list[int]] = {c: FLAVOURS[c] for c in classes}
    listed = {v for vals in FLAVOURS.values() for v in vals}
    drop = sorted({*DROPPED, *(v for v in values if v not in listed)})
    mapping["drop"] = drop
    return classes, mapping


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
    reader["tracks"] = [v for v in PHYSLITE_DEFAULTS["tracks"] if v not in PHYSLITE_TRACK_HITS]
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
    """(reader, inputs, notes) of a flat ntuple."""
    jets: dict[str, str] = dict(info.kinematics)
    notes = list(info.notes)
    if info.label:
        jets[info.label.removeprefix("Jet_")] = info.label
    for tagger in info.taggers:
        jets[tagger.removeprefix("Jet_")] = tagger
    if info.weight:
        jets["mcEventWeight"] = info.weight
    if info.event_number:
        jets["eventNumber"] = info.event_number
    reader: dict[str, Any] = {
        "type": "flat",
        "tree": info.tree,
        "entry": info.entry,
        "unit": "GeV",
        "jets": jets,
    }
    variables: dict[str, list[str]] = {"jets": [v for v in ("pt", "eta", "mass", "e") if v in jets]}
    if info.links and info.entry == "event":
        reader["collections"] = info.links
        for name, coll in info.links.items():
            variables[name] = [v for v in ("pt", "eta") if v in coll["variables"]]
            sides = ", ".join(coll["link"]["jet_side"])
            notes.append(f"collection '{name}' attached to jets by {sides}")
    inputs = {
        "variables": variables,
        "transforms": {"jets": {"pt": "log1p"}, **{n: {"pt": "log1p"} for n in info.links}},
    }
    return reader, inputs, notes


def flat_label(info: FileInfo, reader: dict[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """(label variable, class -> values map, notes) for a flat file without a truth label.

    With non-zero MC b-quark momenta: the ΔR of each jet to the nearest b quark, b jets
    within 0.3. Otherwise (HZZ: the MC branches are all zero) the file's own b-tag score
    is a proxy label, for a workflow check only.
    """
    if info.b_quarks and not info.b_quarks_empty:
        jet_eta, jet_phi = info.kinematics["eta"], info.kinematics["phi"]
        terms = []
        for q in info.b_quarks:
            pt = f"hypot({q}_px, {q}_py)"
            dr = f"delta_r({jet_eta}, {jet_phi}, arcsinh({q}_pz / {pt}), arctan2({q}_py, {q}_px))"
            terms.append(f"where({pt} > 0, {dr}, 99)")
        reader["jets"]["truth_dr_b"] = f"minimum({terms[0]}, {terms[1]})"
        notes = ["no truth label: b jets are those within ΔR < 0.3 of an MC b quark"]
        return "truth_dr_b", {"bjets": {"range": [0, 0.3]}, "ujets": {"range": [0.3, 1e9]}}, notes
    if not info.taggers:
        raise HepsnakeError(info.path, "no truth label, MC b quarks or b-tag score to label jets")
    tagger = info.taggers[0]
    for key in [k for k, v in reader["jets"].items() if v == tagger]:
        del reader["jets"][key]  # a reference tagger scored on its own labels says nothing
    reader["jets"]["truth_btag_proxy"] = tagger
    why = "MC b-quark branches are all zero" if info.b_quarks else "no MC b-quark branches"
    notes = [
        f"no truth label and {why}: the label is a PROXY from the file's own b-tag score "
        f"{tagger} (> 0.5: bjets), stored as truth_btag_proxy (never an input). The run checks "
        "the workflow; its numbers are not b-tagging performance"
    ]
    return (
        "truth_btag_proxy",
        {"bjets": {"range": [0.5, 1e9]}, "ujets": {"range": [-1e9, 0.5]}},
        notes,
    )


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


SMALL_FILE = 1000  # events: below this the split fractions and seed are checked on the file
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


def small_file_split(
    info: FileInfo, config: dict[str, Any], sample: str
) -> tuple[dict[str, float], int] | None:
    """For a small file: fractions 0.6/0.2/0.2 and the first seed from 42 whose event-hash
    split gives every split at least one jet of every class after the cuts (None: the
    defaults, for a file of at least SMALL_FILE events or when no seed of 42..141 does)."""
    if info.entries >= SMALL_FILE:
        return None
    reader = next(iter(config["readers"].values()))
    cuts = config["convert"]["cuts"]
    source = open_source(info.path, reader, None, 0, cut_names(cuts))
    label_map = config["prepare"]["label_map"]
    events, labels = [], []
    for _, chunk in source.chunks(100000):
        mask, _ = apply_cuts(chunk.jets, cuts, info.path, chunk.aux)
        events.append(chunk.jets["eventNumber"][mask])
        labels.append(chunk.jets[label_map["variable"]][mask])
    event_number, masks = (
        np.concatenate(events),
        class_masks(np.concatenate(labels), label_map["map"]),
    )
    fractions = [SMALL_FRACTIONS[s] for s in SPLITS]
    for seed in range(42, 142):
        which = assign_splits(event_uniform(sample, event_number, seed), fractions)
        if all((which[m] == i).any() for m in masks for i in range(len(SPLITS))):
            return SMALL_FRACTIONS, seed
    return None


def starter(info: FileInfo, out: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(config, sample-sheet row, notes on what was found and chosen) for ``info``."""
    mev = info.reader == "physlite"
    if mev:
        reader, inputs, notes = physlite_parts(info)
        reader_name = "physlite"
    else:
        reader, inputs, notes = flat_parts(info)
        reader_name = "nanoaod" if "Jet_hadronFlavour" in info.keys else "flat"
    if info.label:
        label_var = info.label if mev else info.label.removeprefix("Jet_")
        classes, mapping = flavour_map(info.label_values)
        notes.append(f"label {info.label}: values {info.label_values} -> {mapping}")
    else:
        label_var, mapping, label_notes = flat_label(info, reader)
        classes = [c for c in FLAVOURS if c in mapping]
        notes += label_notes
    if len(classes) < 2:
        raise HepsnakeError(
            info.path, f"label values {info.label_values} give fewer than 2 classes"
        )
    unit = "MeV" if mev else "GeV"
    scale = 1000.0 if mev else 1.0
    cuts = [f"pt > {20 * scale:g}", "abs(eta) < 2.5"]
    if not mev and "Jet_jetId" in info.keys:
        cuts.append("Jet_jetId >= 2")  # a cut on a raw branch that is not stored
    inputs["truth"] = list(dict.fromkeys([*ATLAS_TRUTH, label_var]))
    collections = [c for c in inputs["variables"] if c != "jets"]
    model = MODEL if collections else JETS_ONLY_MODEL
    references = reference_taggers(info, reader, classes)
    # the sample name pattern ($defs/name): letters, digits, _ . - and a letter or digit first
    sample = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(info.path).stem)
    sample = sample if sample[:1].isalnum() else f"s{sample}"
    config: dict[str, Any] = {
        "class_names": classes,
        "samples": str(out.resolve() / "samples.tsv"),
        "readers": {reader_name: reader},
        "convert": {
            "max_constituents": {c: inputs.get("num_inputs", {}).get(c, 2) for c in collections},
            "sort_by": dict.fromkeys(collections, "pt"),
            "cuts": cuts,
            "chunk_size": 100000,
            "skip_bad_files": False,
        },
        "inputs": inputs,
        "models": [model],
        "model_dir": "config/models",
        "training_overrides": {"batch_size": batch_size(info.jets)},
        "evaluate": {
            "signal": "bjets",
            "working_points": [0.6, 0.7, 0.77, 0.85],
            "pt_bins": [20 * scale, 50 * scale, 100 * scale, 10000 * scale],
            "reference_taggers": references,
            "plot_style": PLOT_STYLES.get(reader_name),
        },
        "prepare": {
            "fractions": {"train": 0.8, "val": 0.1, "test": 0.1},
            "label_map": {"variable": label_var, "map": mapping},
            "weights": {"mode": "none"},
        },
    }
    split = small_file_split(info, config, sample)
    if split is not None:
        config["prepare"]["fractions"], config["prepare"]["seed"] = split
        notes.append(
            f"{info.entries} events only: fractions {split[0]} and seed {split[1]}, the first "
            "seed whose split holds jets of every class in train, val and test"
        )
    notes.append(f"energy unit {unit}: cuts {cuts}, pt bins {config['evaluate']['pt_bins']}")
    notes.append(
        f"reference taggers {list(references) or 'none'}; model '{model}' on inputs "
        f"{inputs['variables']}; batch size {config['training_overrides']['batch_size']} "
        f"for {info.jets} jets"
    )
    row = {"name": sample, "files": str(Path(info.path).resolve()), "reader": reader_name}
    row["role"] = "train"
    return config, row, notes


def header(info: FileInfo, notes: list[str]) -> str:
    """The comment block opening the written config: what was found and chosen."""
    lines = [
        f"hepsnake starter config, written by `hepsnake init --from {info.path}`.",
        "Every key is documented in config/README.md. Run from the repository root:",
        "  snakemake --cores 2 --configfile <this file>",
        "",
        f"Found: {info.reader} file, tree '{info.tree}' ({info.entries} entries, {info.jets} jets);"
        f" trees {info.trees}",
        *(f"Chosen: {n}" for n in notes),
    ]
    # names read from the file never break out of the comment
    return "".join(f"# {' '.join(line.splitlines())}".rstrip() + "\n" for line in lines)


def write_starter(
    path: str, out: str | Path, reader: str | None = None, force: bool = False
) -> list[str]:
    """Inspect ``path`` and write ``out/config.yaml`` and ``out/samples.tsv``; return the
    lines describing what was found and chosen. Existing files need ``force``."""
    out = Path(out)
    targets = [out / "config.yaml", out / "samples.tsv"]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise HepsnakeError(existing[0], "exists (use --force to replace it)")
    if re.search(r"[\s,]", str(Path(path).resolve())):
        # the sample sheet separates files by spaces and commas
        raise HepsnakeError(path, "a path with spaces or commas cannot go in a sample sheet")
    info = inspect_file(path, reader)
    config, row, notes = starter(info, out)
    out.mkdir(parents=True, exist_ok=True)
    text = header(info, notes) + yaml.safe_dump(
        config, sort_keys=False, width=100, default_flow_style=None
    )
    sheet = "\t".join(row) + "\n" + "\t".join(row.values()) + "\n"
    with atomic_path(targets[0]) as tmp_config, atomic_path(targets[1]) as tmp_sheet:
        tmp_config.write_text(text)
        tmp_sheet.write_text(sheet)
    return [line.removeprefix("# ") for line in header(info, notes).splitlines()[4:]] + [
        f"wrote {targets[0]} and {targets[1]}"
    ]
