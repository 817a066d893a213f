"""The classes of a starter config, in this order of preference: one class per input file when
the user names them (``--from CLASS=FILE``); a truth-label branch (FTAG flavours, or its own
integer values); one class per file when several files have no label branch; for a single flat
file, the ΔR to MC b quarks or a declared b-tag proxy. Otherwise one error line asks for a
label, naming the candidate branches."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepsnake.errors import HepsnakeError
from hepsnake.init.flat import MAX_CLASSES, strip
from hepsnake.init.info import FileInfo

# flavour classes (FTAG names) and the truth-label values of each; 15 (tau) is dropped
FLAVOURS: dict[str, list[int]] = {"ujets": [0, 1, 2, 3, 21], "cjets": [4], "bjets": [5]}
DROPPED = [15]
FLAVOUR_BRANCH = re.compile(r"flav|TruthLabelID", re.I)
CLASS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # class_names items in the config schema
ASK = "give one file per class (--from CLASS=FILE CLASS=FILE ...)"


@dataclass
class Labels:
    """Class names, the signal, and how jets get their class: ``label_map`` (from a jet
    variable) or ``per_file`` (each file's class, the sample sheet's label column)."""

    classes: list[str]
    signal: str
    variable: str | None = None  # the jet variable prepare.label_map reads
    label_map: dict[str, Any] | None = None
    per_file: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def flavour_map(values: dict[int, int]) -> tuple[list[str], dict[str, list[int]]]:
    """The classes present among the label ``values`` and the class -> values map
    (unlisted values seen in the file, and taus, go to ``drop``)."""
    classes = [c for c, vals in FLAVOURS.items() if any(v in values for v in vals)]
    mapping: dict[str, list[int]] = {c: FLAVOURS[c] for c in classes}
    listed = {v for vals in FLAVOURS.values() for v in vals}
    mapping["drop"] = sorted({*DROPPED, *(v for v in values if v not in listed)})
    return classes, mapping


def value_map(variable: str, values: dict[int, int]) -> tuple[list[str], dict[str, list[int]]]:
    """One class per label value, named ``{variable}_{value}`` (``m`` for a minus sign)."""
    mapping = {f"{variable}_{str(v).replace('-', 'm')}": [v] for v in sorted(values)}
    return list(mapping), mapping


def file_class(text: str | None, path: str) -> str:
    """The class of one input file: ``text`` (CLASS of ``CLASS=FILE``) or the file's stem."""
    if text is not None:
        if not CLASS_NAME.match(text):
            raise HepsnakeError(
                f"{text}={path}", "a class name is a letter then letters, digits or _"
            )
        return text
    name = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)
    return name if name[:1].isalpha() else f"c{name}"


def per_file(classes_given: list[str | None], paths: list[str]) -> Labels:
    """One class per file (files of the same class share it); the signal is the first class
    whose name has ``sig`` in it, else the last."""
    per = [file_class(c, p) for c, p in zip(classes_given, paths, strict=True)]
    classes = list(dict.fromkeys(per))
    if len(classes) < 2:
        raise HepsnakeError(paths[0], f"every file is class '{classes[0]}': {ASK}")
    signal = next((c for c in classes if "sig" in c.lower()), classes[-1])
    notes = [
        "classes from the files: "
        + ", ".join(f"{Path(p).name} -> {c}" for p, c in zip(paths, per, strict=True))
        + f"; signal '{signal}' (evaluate.signal)"
    ]
    return Labels(classes, signal, per_file=per, notes=notes)


def from_branch(info: FileInfo) -> Labels:
    """Classes from the truth-label branch: FTAG flavours for a flavour label, else one
    class per value."""
    assert info.label is not None
    variable = info.label if info.reader == "physlite" else strip(info.jet_prefix, info.label)
    if info.reader == "physlite" or FLAVOUR_BRANCH.search(info.label):
        classes, mapping = flavour_map(info.label_values)
        signal = "bjets" if "bjets" in classes else classes[-1] if classes else ""
    else:
        classes, mapping = value_map(variable, info.label_values)
        signal = classes[-1]
    if len(classes) < 2:
        raise HepsnakeError(
            info.path, f"label values {info.label_values} give fewer than 2 classes"
        )
    notes = [f"label {info.label}: values {info.label_values} -> {mapping}"]
    if signal != "bjets":
        notes.append(f"signal '{signal}' (evaluate.signal)")
    label_map = {"variable": variable, "map": mapping}
    return Labels(classes, signal, variable, label_map, notes=notes)


def flat_proxy(info: FileInfo, reader: dict[str, Any]) -> Labels:
    """A single flat file without a truth label: with non-zero MC b-quark momenta the ΔR of
    each jet to the nearest b quark (b jets within 0.3); otherwise (HZZ: the MC branches are
    all zero) the file's own b-tag score as a proxy label, for a workflow check only; without
    either, one error line asking for a label branch or one file per class."""
    classes = ["ujets", "bjets"]
    if info.b_quarks and not info.b_quarks_empty:
        jet_eta, jet_phi = info.kinematics["eta"], info.kinematics["phi"]
        terms = []
        for q in info.b_quarks:
            pt = f"hypot({q}_px, {q}_py)"
            dr = f"delta_r({jet_eta}, {jet_phi}, arcsinh({q}_pz / {pt}), arctan2({q}_py, {q}_px))"
            terms.append(f"where({pt} > 0, {dr}, 99)")
        reader["jets"]["truth_dr_b"] = f"minimum({terms[0]}, {terms[1]})"
        mapping = {"bjets": {"range": [0, 0.3]}, "ujets": {"range": [0.3, 1e9]}}
        notes = ["no truth label: b jets are those within ΔR < 0.3 of an MC b quark"]
        return Labels(
            classes, "bjets", "truth_dr_b", {"variable": "truth_dr_b", "map": mapping}, notes=notes
        )
    if not info.taggers:
        tree = f"tree '{info.tree}'"
        if info.label_candidates:
            raise HepsnakeError(
                info.path,
                f"no truth-label branch found in {tree}; name one with --label BRANCH "
                f"(candidates: {', '.join(info.label_candidates)}) or {ASK}",
            )
        raise HepsnakeError(
            info.path,
            f"no truth-label branch in {tree} and no candidate (a per-jet integer branch with "
            f"2 to {MAX_CLASSES} values): {ASK}",
        )
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
    mapping = {"bjets": {"range": [0.5, 1e9]}, "ujets": {"range": [-1e9, 0.5]}}
    label_map = {"variable": "truth_btag_proxy", "map": mapping}
    return Labels(classes, "bjets", "truth_btag_proxy", label_map, notes=notes)


def choose(
    info: FileInfo,
    reader: dict[str, Any],
    classes_given: list[str | None],
    paths: list[str],
    label_given: bool,
) -> Labels:
    """The classes for ``info`` (the files' combined findings) in the module's order."""
    if any(c is not None for c in classes_given):
        if label_given:
            raise HepsnakeError(
                paths[0], "--label and --from CLASS=FILE both say where classes come from: use one"
            )
        return per_file(classes_given, paths)
    if info.label:
        return from_branch(info)
    if len(paths) > 1:
        return per_file(classes_given, paths)
    return flat_proxy(info, reader)
