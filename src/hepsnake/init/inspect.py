"""What a ROOT file holds, as far as a starter config needs: its trees and RNTuples, the jet
branches and their structure, truth-label candidates, reference tagger scores and collections
linked to jets by index."""

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.expressions import names
from hepsnake.io.root import open_tree, tree_keys

# preference order of truth-label branches (PHYSLITE aux variable names, NanoAOD branches)
PHYSLITE_LABELS = ("HadronConeExclTruthLabelID", "PartonTruthLabelID")
FLAT_LABELS = ("Jet_hadronFlavour", "Jet_partonFlavour", "Jet_HadronConeExclTruthLabelID")
# preference order of reference taggers: PHYSLITE b-tagging score prefixes, flat branches
PHYSLITE_TAGGERS = ("GN2v01", "GN2v00", "DL1dv01", "DL1dv00", "DL1r")
FLAT_TAGGERS = ("Jet_btagDeepFlavB", "Jet_btagDeepB", "Jet_btagCSVV2", "Jet_btag")
WEIGHTS = ("genWeight", "EventWeight", "mcEventWeight", "weight")
EVENT_NUMBERS = ("event", "eventNumber", "EventNumber")
# MC b-quark momenta of a flat ntuple (uproot-HZZ style), for a ΔR-derived label
B_QUARKS = ("MChadronicBottom", "MCleptonicBottom")
LINK = re.compile(r"^Jet_([a-z][A-Za-z]*)Idx1$")


@dataclass
class FileInfo:
    """The findings of :func:`inspect_file` (``reader`` is ``physlite`` or ``flat``)."""

    path: str
    reader: str
    tree: str
    entries: int
    trees: dict[str, int]
    keys: set[str] = field(repr=False)
    jet_prefix: str = ""
    entry: str = "event"  # flat: jet branches jagged per event ("event") or one jet per entry
    jets: int = 0
    kinematics: dict[str, str] = field(default_factory=dict)
    label: str | None = None
    label_values: dict[int, int] = field(default_factory=dict)
    taggers: list[str] = field(default_factory=list)
    btag_container: str | None = None
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    weight: str | None = None
    event_number: str | None = None
    b_quarks: list[str] = field(default_factory=list)
    b_quarks_empty: bool = False
    notes: list[str] = field(default_factory=list)


def list_trees(path: str) -> dict[str, int]:
    """Every top-level TTree and RNTuple of ``path`` with its entries."""
    try:
        handle = uproot.open(path)
        classes = handle.classnames(recursive=False)
    except FileNotFoundError as exc:
        raise HepsnakeError(path, "file not found") from exc
    except Exception as exc:
        raise HepsnakeError(path, f"not a readable ROOT file ({first_line(exc)})") from exc
    trees = {}
    for key, cls in classes.items():
        name = key.split(";")[0]
        if cls in ("TTree", "ROOT::RNTuple") and name not in trees:
            trees[name] = int(handle[name].num_entries)
    if not trees:
        raise HepsnakeError(path, "holds no TTree or RNTuple")
    return trees


def inspect_file(path: str, reader: str | None = None) -> FileInfo:
    """Inspect ``path``; ``reader`` forces ``physlite`` or ``flat`` (None: detected)."""
    trees = list_trees(path)
    for name in ("EventData", "CollectionTree"):
        if name in trees and reader in (None, "physlite"):
            tree = open_tree(path, name)
            keys = tree_keys(tree)
            sep = "." if hasattr(tree, "branches") else ":"
            if f"AnalysisJetsAuxDyn{sep}pt" in keys:
                return inspect_physlite(path, tree, keys, sep, trees)
    if reader == "physlite":
        raise HepsnakeError(path, "no PHYSLITE jets (AnalysisJetsAuxDyn) in any tree")
    candidates = {n: e for n, e in trees.items() if e > 0 and not n.startswith(("#", "Meta"))}
    for name in sorted(candidates, key=lambda n: -candidates[n]):
        tree = open_tree(path, name)
        keys = tree_keys(tree)
        if any(k.startswith("Jet_") for k in keys):
            return inspect_flat(path, tree, keys, trees)
    raise HepsnakeError(path, f"no tree with Jet_* branches (trees: {', '.join(trees)})")


def value_counts(values: ak.Array) -> dict[int, int]:
    """How often each (integer) value occurs, sorted by value."""
    flat = ak.to_numpy(ak.flatten(values, axis=None)).astype(np.int64)
    return dict(sorted(Counter(flat.tolist()).items()))


def inspect_physlite(
    path: str, tree: Any, keys: set[str], sep: str, trees: dict[str, int]
) -> FileInfo:
    """A PHYSLITE file: jet labels and b-tagging scores reachable through ``btaggingLink``."""
    jet = f"AnalysisJetsAuxDyn{sep}"
    info = FileInfo(path, "physlite", tree.name, int(tree.num_entries), trees, keys, jet_prefix=jet)
    info.kinematics = {v: f"{jet}{v}" for v in ("pt", "eta", "phi", "m")}
    info.label = next((v for v in PHYSLITE_LABELS if f"{jet}{v}" in keys), None)
    arrays = tree.arrays([f"{jet}eta", *([f"{jet}{info.label}"] if info.label else [])])
    info.jets = int(ak.sum(ak.num(arrays[f"{jet}eta"], axis=1)))
    if info.label:
        info.label_values = value_counts(arrays[f"{jet}{info.label}"])
    if f"{jet}btaggingLink" in keys:
        scores = re.compile(rf"^(BTagging_\w+)AuxDyn{re.escape(sep)}(\w+)_p(b|c|u|tau)$")
        found: dict[tuple[str, str], list[str]] = {}
        for key in sorted(keys):
            match = scores.match(key)
            if match:
                found.setdefault((match[1], match[2]), []).append(f"{match[2]}_p{match[3]}")
        for tagger in PHYSLITE_TAGGERS:
            hits = [(c, t) for c, t in found if t == tagger]
            if hits:
                info.btag_container = hits[0][0]
                info.taggers = [v for v in found[hits[0]] if not v.endswith("_ptau")]
                break
    return info


def inspect_flat(path: str, tree: Any, keys: set[str], trees: dict[str, int]) -> FileInfo:
    """A flat ntuple: Jet_* branches (NanoAOD or similar), per event or one jet per entry."""
    info = FileInfo(path, "flat", tree.name, int(tree.num_entries), trees, keys, jet_prefix="Jet_")
    jet_keys = sorted(k for k in keys if k.startswith("Jet_"))
    probe = tree.arrays([jet_keys[0]], entry_stop=1000)[jet_keys[0]]
    info.entry = "event" if probe.ndim == 2 else "jet"
    if {"Jet_pt", "Jet_eta", "Jet_phi"} <= keys:
        info.kinematics = {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi"}
        if "Jet_mass" in keys:
            info.kinematics["mass"] = "Jet_mass"
    elif {"Jet_Px", "Jet_Py", "Jet_Pz"} <= keys:
        info.kinematics = {
            "pt": "hypot(Jet_Px, Jet_Py)",
            "eta": "arcsinh(Jet_Pz / hypot(Jet_Px, Jet_Py))",
            "phi": "arctan2(Jet_Py, Jet_Px)",
        }
        if "Jet_E" in keys:
            info.kinematics["e"] = "Jet_E"
        info.notes.append("jet pt, eta, phi derived from Jet_Px/Py/Pz by expressions")
    else:
        raise HepsnakeError(path, "no jet kinematics (Jet_pt/eta/phi or Jet_Px/Py/Pz)")
    info.label = next((b for b in FLAT_LABELS if b in keys), None)
    present = [b for b in FLAT_TAGGERS if b in keys]
    if present:
        scores = tree.arrays(present)
        for branch in present:
            values = ak.to_numpy(ak.flatten(scores[branch], axis=None))
            if len(values) and values.min() < values.max():
                info.taggers.append(branch)
            else:  # NanoAOD of 2015: btagDeepFlavB is -3000 and btagDeepB -1 for every jet
                info.notes.append(f"{branch} skipped: the same value ({values[:1]}) for every jet")
    info.weight = next((b for b in WEIGHTS if b in keys), None)
    info.event_number = next((b for b in EVENT_NUMBERS if b in keys), None)
    first = names(info.kinematics["pt"])[0]
    read = [first, *([info.label] if info.label else [])]
    arrays = tree.arrays(read)
    info.jets = int(ak.count(arrays[first])) if info.entry == "event" else info.entries
    if info.label:
        info.label_values = value_counts(arrays[info.label])
    for key in sorted(keys):
        match = LINK.match(key)
        target = match and match[1][0].upper() + match[1][1:]
        if match and f"{target}_pt" in keys:
            sides = [k for k in (f"Jet_{match[1]}Idx1", f"Jet_{match[1]}Idx2") if k in keys]
            variables = {
                v: f"{target}_{v}" for v in ("pt", "eta", "phi") if f"{target}_{v}" in keys
            }
            info.links[f"{match[1]}s"] = {"link": {"jet_side": sides}, "variables": variables}
    if not info.label:
        momenta = [f"{q}_{c}" for q in B_QUARKS for c in ("px", "py", "pz")]
        if all(m in keys for m in momenta):
            info.b_quarks = list(B_QUARKS)
            values = tree.arrays(momenta)
            info.b_quarks_empty = all(
                not np.any(ak.to_numpy(ak.flatten(values[m], axis=None))) for m in momenta
            )
    return info
