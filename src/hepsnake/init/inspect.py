"""What a ROOT file holds, as far as a starter config needs: its trees and RNTuples, the reader
(PHYSLITE or a flat ntuple, :mod:`hepsnake.init.flat`), jet branches, truth-label candidates,
reference tagger scores and constituent collections."""

import re
from typing import Any

import awkward as ak
import uproot

from hepsnake.errors import HepsnakeError, first_line
from hepsnake.init.flat import inspect_flat, jet_prefix
from hepsnake.init.info import FileInfo, value_counts
from hepsnake.io.root import open_tree, tree_keys

# preference order of truth-label branches (PHYSLITE aux variable names)
PHYSLITE_LABELS = ("HadronConeExclTruthLabelID", "PartonTruthLabelID")
# preference order of reference taggers: PHYSLITE b-tagging score prefixes
PHYSLITE_TAGGERS = ("GN2v01", "GN2v00", "DL1dv01", "DL1dv00", "DL1r")
PHYSLITE_TREES = ("EventData", "CollectionTree")


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


def inspect_file(
    path: str, reader: str | None = None, tree: str | None = None, label: str | None = None
) -> FileInfo:
    """Inspect ``path``; ``reader`` forces ``physlite`` or ``flat``, ``tree`` the tree and
    ``label`` a flat ntuple's truth-label branch (None: detected)."""
    trees = list_trees(path)
    if tree is not None and tree not in trees:
        raise HepsnakeError(path, f"no tree '{tree}' (trees: {', '.join(trees)})")
    for name in [tree] if tree else PHYSLITE_TREES:
        if name in trees and reader in (None, "physlite"):
            handle = open_tree(path, name)
            keys = tree_keys(handle)
            sep = "." if hasattr(handle, "branches") else ":"
            if f"AnalysisJetsAuxDyn{sep}pt" in keys:
                return inspect_physlite(path, handle, keys, sep, trees)
    if reader == "physlite":
        raise HepsnakeError(path, "no PHYSLITE jets (AnalysisJetsAuxDyn) in any tree")
    names = (
        [tree] if tree else [n for n in trees if trees[n] > 0 and not n.startswith(("#", "Meta"))]
    )
    found = {}
    for name in names:
        handle = open_tree(path, name)
        prefix = jet_prefix(handle.keys())
        if prefix:
            found[name] = (handle, prefix)
    if not found:
        where = f"tree '{tree}'" if tree else f"trees: {', '.join(trees)}"
        raise HepsnakeError(
            path, f"no jet branches (jet_pt and jet_eta, or jet_Px/Py/Pz, any case; {where})"
        )
    if len(found) > 1:
        raise HepsnakeError(
            path, f"jet branches in several trees ({', '.join(found)}): choose one with --tree"
        )
    ((handle, prefix),) = found.values()
    return inspect_flat(path, handle, tree_keys(handle), trees, prefix, label)


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
