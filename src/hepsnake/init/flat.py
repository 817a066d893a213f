"""What a flat ntuple holds, as far as a starter config needs.

Jet branches share a jet prefix of any case (``Jet_``, ``jet_``, ``JET_``). One tree entry per
jet (CalRatio-style ntuples: every scalar branch is a jet variable, every jagged branch a
constituent variable, grouped into collections by prefix: ``track_``, ``clus_``, ``MSeg_``) or
jet branches jagged per event (NanoAOD: the jet kinematics, label and tagger scores are read;
constituents are lists per jet, or per-event collections linked to jets by index branches).
"""

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import awkward as ak
import numpy as np

from hepsnake.errors import HepsnakeError
from hepsnake.init.info import FileInfo, value_counts
from hepsnake.io.expressions import evaluate, names

PROBE = 1000  # entries read to learn a branch's layout and values
MAX_CLASSES = 20  # a label branch takes at most this many integer values
JET_PREFIX = re.compile(r"^(jets?_)", re.I)
# truth-label branch names after the jet prefix (any case), in preference order: FTAG flavour
# labels (values 0..5, 15, 21), then labels whose values are the classes themselves
FLAVOUR_LABELS = (
    "hadronFlavour",
    "partonFlavour",
    "HadronConeExclTruthLabelID",
    "PartonTruthLabelID",
)
CLASS_LABELS = ("label", "truthLabel", "truth_label", "flavour_label", "class_label")
TAGGERS = ("btagDeepFlavB", "btagDeepB", "btagCSVV2", "btag")  # after the jet prefix
WEIGHTS = ("genWeight", "EventWeight", "mcEventWeight", "weight")
EVENT_NUMBERS = ("event", "eventNumber")
# MC b-quark momenta of a flat ntuple (uproot-HZZ style), for a ΔR-derived label
B_QUARKS = ("MChadronicBottom", "MCleptonicBottom")
# constituent collections by branch prefix (any case); other prefixes: lowercase plural
COLLECTIONS = {
    "track": "tracks",
    "trk": "tracks",
    "cluster": "clusters",
    "clus": "clusters",
    "calocluster": "clusters",
    "mseg": "segments",
    "museg": "segments",
    "pfcand": "pfcands",
    "constituent": "constituents",
}
JET_LINK = re.compile(r"^([a-z][A-Za-z]*)Idx1$")  # after the jet prefix: Jet_muonIdx1
JET_INDEX = re.compile(r"^jet_?(idx|index)$", re.I)  # after a constituent prefix: track_jetIdx
INDEX = re.compile(r"(idx|index)\d*$", re.I)  # index branches: links, never labels or inputs


class Names:
    """The top-level branch names of a tree in file order, looked up in any case."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.all = [k for k in keys if "." not in k and "/" not in k and not k.startswith("_")]
        self.lower = {}
        for key in self.all:
            self.lower.setdefault(key.lower(), key)

    def find(self, *candidates: str) -> str | None:
        """The first of ``candidates`` that is a branch (in any case)."""
        return next((self.lower[c.lower()] for c in candidates if c.lower() in self.lower), None)


def jet_prefix(keys: Iterable[str]) -> str | None:
    """The jet prefix (as the file spells it) whose pt and eta, or Px/Py/Pz, are branches."""
    found = Names(keys)
    for key in found.all:
        match = JET_PREFIX.match(key)
        if match and (
            (found.find(f"{match[1]}pt") and found.find(f"{match[1]}eta"))
            or all(found.find(f"{match[1]}P{c}") for c in "xyz")
        ):
            return match[1]
    return None


def strip(prefix: str, branch: str) -> str:
    """``branch`` without the jet ``prefix`` (any case)."""
    return branch[len(prefix) :] if branch.lower().startswith(prefix.lower()) else branch


def is_numeric(values: ak.Array) -> bool:
    """Whether ``values`` holds numbers (possibly in lists), not records or strings."""
    form = values.layout.form
    while hasattr(form, "content") and not isinstance(form, ak.forms.NumpyForm):
        form = form.content
    return isinstance(form, ak.forms.NumpyForm) and form.primitive != "datetime64"


def probe(tree: Any, branches: Iterable[str]) -> dict[str, ak.Array]:
    """The first :data:`PROBE` entries of each numeric branch of ``branches``."""
    out = {}
    for branch in branches:
        try:
            values = tree.arrays([branch], entry_stop=PROBE)[branch]
        except Exception:  # a type uproot cannot read (strings, objects): no jet variable
            continue
        if is_numeric(values):
            out[branch] = values
    return out


def class_like(values: ak.Array) -> bool:
    """Whether ``values`` are integers taking 2 to :data:`MAX_CLASSES` values."""
    flat = np.asarray(ak.to_numpy(ak.flatten(values, axis=None)), dtype=np.float64)
    distinct = np.unique(flat[np.isfinite(flat)])
    return 2 <= len(distinct) <= MAX_CLASSES and bool(np.all(distinct == np.round(distinct)))


def kinematics(found: Names, prefix: str, path: str) -> tuple[dict[str, str], list[str]]:
    """The jet pt, eta, phi (and mass or energy) mapping: branches or expressions."""
    pt, eta, phi = (found.find(f"{prefix}{v}") for v in ("pt", "eta", "phi"))
    if pt and eta and phi:
        out = {"pt": pt, "eta": eta, "phi": phi}
        mass = found.find(f"{prefix}mass")
        if mass:
            out["mass"] = mass
        return out, []
    px, py, pz = (found.find(f"{prefix}P{c}") for c in "xyz")
    if px and py and pz:
        out = {
            "pt": f"hypot({px}, {py})",
            "eta": f"arcsinh({pz} / hypot({px}, {py}))",
            "phi": f"arctan2({py}, {px})",
        }
        energy = found.find(f"{prefix}E")
        if energy:
            out["e"] = energy
        return out, [f"jet pt, eta, phi derived from {px}/{py}/{pz} by expressions"]
    raise HepsnakeError(path, f"no jet kinematics ({prefix}pt/eta/phi or {prefix}Px/Py/Pz)")


def collection_name(prefix: str) -> str:
    """The collection a constituent branch prefix (without ``_``) names."""
    low = prefix.lower()
    return COLLECTIONS.get(low, low if low.endswith("s") else f"{low}s")


def group_by_prefix(branches: Iterable[str], jet: str) -> dict[str, list[str]]:
    """Constituent branches by prefix (the text before the first ``_``, after any jet prefix);
    a branch without one is left out."""
    groups: dict[str, list[str]] = {}
    for branch in branches:
        head, sep, _ = strip(jet, branch).partition("_")
        if sep and head:
            groups.setdefault(head, []).append(branch)
    return groups


def same_length(arrays: dict[str, ak.Array], axis: int) -> tuple[list[str], list[str]]:
    """(branches, left out) of a group: those whose list lengths at ``axis`` are those of
    most of the group."""
    lengths = {
        b: ak.to_numpy(ak.flatten(ak.num(a, axis=axis), axis=None)) for b, a in arrays.items()
    }
    common = Counter(v.tobytes() for v in lengths.values()).most_common(1)[0][0]
    keep = [b for b, v in lengths.items() if v.tobytes() == common]
    return keep, [b for b in arrays if b not in keep]


def add_collections(
    info: FileInfo, arrays: dict[str, ak.Array], depth: int, link: dict[str, str] | None = None
) -> None:
    """Constituent collections of ``arrays`` (lists per jet at ``depth``; per-event lists
    linked to jets by a ``link`` branch per prefix), their fields and a slot count."""
    groups = group_by_prefix([b for b, a in arrays.items() if a.ndim == depth], info.jet_prefix)
    for head, branches in groups.items():
        index = (link or {}).get(head)
        fields = {b: arrays[b] for b in branches if b != index}
        keep, left = same_length(fields, depth - 1)
        name = collection_name(head)
        if name in info.collections or name in info.links:
            name = head.lower()
        variables = {strip(info.jet_prefix, b).partition("_")[2]: b for b in keep}
        if index:
            info.links[name] = {"link": {"constituent_side": index}, "variables": variables}
            info.notes.append(f"collection '{name}' attached to jets by {index}")
            counts = per_jet_counts(arrays[index])
        else:
            info.collections[name] = variables
            counts = ak.to_numpy(ak.flatten(ak.num(arrays[keep[0]], axis=depth - 1), axis=None))
        info.slots[name] = max(1, int(np.ceil(np.quantile(counts, 0.99)))) if len(counts) else 1
        if left:
            info.notes.append(f"{', '.join(left)} left out of '{name}': other list lengths")


def per_jet_counts(index: ak.Array) -> np.ndarray:
    """Constituents per jet (jets with any) from a per-constituent jet index, per event."""
    flat = ak.to_numpy(ak.flatten(index, axis=1)).astype(np.int64)
    event = np.repeat(np.arange(len(index)), ak.to_numpy(ak.num(index, axis=1)))
    keep = flat >= 0
    return np.unique(np.stack([event[keep], flat[keep]]), axis=1, return_counts=True)[1]


def find_label(prefix: str, per_jet: Iterable[str]) -> str | None:
    """The truth-label branch among the per-jet branches ``per_jet``, by name."""
    stripped = {strip(prefix, b).lower(): b for b in per_jet}
    for name in (*FLAVOUR_LABELS, *CLASS_LABELS):
        if name.lower() in stripped:
            return stripped[name.lower()]
    return None


def label_candidates(arrays: dict[str, ak.Array], skip: set[str]) -> list[str]:
    """Per-jet branches that could be a label: integers with 2 to MAX_CLASSES values."""
    return [b for b, a in arrays.items() if b not in skip and not INDEX.search(b) and class_like(a)]


def energy_unit(tree: Any, pt: str) -> str:
    """``MeV`` when the median jet pt of the first entries is above 1000, else ``GeV``."""
    used = names(pt)
    arrays = tree.arrays(used, entry_stop=PROBE)
    values = evaluate(pt, {n: arrays[n] for n in used}, "jet pt")
    flat = np.asarray(ak.to_numpy(ak.flatten(values, axis=None)), dtype=np.float64)
    return "MeV" if len(flat) and np.median(flat) > 1000 else "GeV"


def inspect_flat(
    path: str, tree: Any, keys: set[str], trees: dict[str, int], prefix: str, label: str | None
) -> FileInfo:
    """A flat ntuple with jet branches under ``prefix``; ``label`` names the truth-label
    branch (None: found by name, else the candidates are listed)."""
    info = FileInfo(path, "flat", tree.name, int(tree.num_entries), trees, keys, jet_prefix=prefix)
    found = Names(tree.keys())
    info.kinematics, info.notes = kinematics(found, prefix, path)
    first = names(info.kinematics["pt"])[0]
    info.entry = "event" if tree.arrays([first], entry_stop=PROBE)[first].ndim == 2 else "jet"
    info.unit = energy_unit(tree, info.kinematics["pt"])
    if info.unit == "MeV":
        info.notes.append("median jet pt above 1000: energies taken as MeV")
    used = {n for expr in info.kinematics.values() for n in names(expr)}
    if info.entry == "jet":
        per_jet = per_jet_layout(info, tree, found, used)
    else:
        per_jet = per_event_layout(info, tree, found)
    if label is not None and label not in per_jet:
        candidates = ", ".join(label_candidates(per_jet, used)) or "none"
        raise HepsnakeError(
            path, f"no per-jet branch '{label}' in tree '{tree.name}' (candidates: {candidates})"
        )
    info.label = label or find_label(prefix, per_jet)
    taggers = [t for t in (found.find(f"{prefix}{t}") for t in TAGGERS) if t and t in per_jet]
    for branch in taggers:
        values = ak.to_numpy(ak.flatten(tree.arrays([branch])[branch], axis=None))
        if len(values) and values.min() < values.max():
            info.taggers.append(branch)
        else:  # NanoAOD of 2015: btagDeepFlavB is -3000 and btagDeepB -1 for every jet
            info.notes.append(f"{branch} skipped: the same value ({values[:1]}) for every jet")
    info.weight = found.find(*WEIGHTS)
    info.event_number = found.find(*EVENT_NUMBERS)
    mapped = {info.label, *taggers, info.weight, info.event_number, *used}
    for var in [v for v, b in info.variables.items() if b in mapped]:
        del info.variables[var]
    if not info.label:
        info.label_candidates = label_candidates(per_jet, mapped)
    arrays = tree.arrays([first, *([info.label] if info.label else [])])
    info.jets = int(ak.count(arrays[first])) if info.entry == "event" else info.entries
    if info.label:
        if not class_like(arrays[info.label]):
            raise HepsnakeError(
                path,
                f"label branch '{info.label}' holds no integer classes (2 to {MAX_CLASSES} "
                f"values; candidates: {', '.join(label_candidates(per_jet, mapped)) or 'none'})",
            )
        info.label_values = value_counts(arrays[info.label])
    else:
        find_b_quarks(info, tree, found)
    return info


def per_jet_layout(info: FileInfo, tree: Any, found: Names, used: set[str]) -> dict[str, ak.Array]:
    """One jet per entry: every other scalar branch is a jet variable, jagged branches are
    constituent collections by prefix. Returns the per-jet branches' first values."""
    counters = count_branches(tree)
    arrays = probe(tree, found.all)
    jagged = {b: a for b, a in arrays.items() if a.ndim == 2}
    add_collections(info, jagged, 2)
    heads = {h.lower() for h in group_by_prefix(jagged, info.jet_prefix)}
    scalars = {
        b: a
        for b, a in arrays.items()
        if a.ndim == 1 and b not in counters and b.lower().removeprefix("n") not in heads
    }
    for branch, values in scalars.items():
        if len(np.unique(ak.to_numpy(values))) == 1:
            info.constants.add(branch)
        name = strip(info.jet_prefix, branch)
        if branch not in used and name not in info.variables and name not in info.kinematics:
            info.variables[name] = branch
    return scalars


def per_event_layout(info: FileInfo, tree: Any, found: Names) -> dict[str, ak.Array]:
    """Jet branches jagged per event: constituents as lists per jet, or per-event collections
    linked by index branches. Returns the per-jet branches' first values."""
    jet = [b for b in found.all if b.lower().startswith(info.jet_prefix.lower())]
    constituents = [
        b for b in found.all if b.partition("_")[0].lower() in COLLECTIONS and b.partition("_")[2]
    ]
    arrays = probe(tree, [*jet, *constituents])
    per_jet = {b: a for b, a in arrays.items() if b in jet and a.ndim == 2}
    add_collections(info, {b: a for b, a in arrays.items() if a.ndim == 3}, 3)
    for branch in sorted(per_jet):
        match = JET_LINK.match(strip(info.jet_prefix, branch))
        target = match and match[1][0].upper() + match[1][1:]
        if match and f"{target}_pt" in info.keys:
            sides = [
                k
                for k in (f"{info.jet_prefix}{match[1]}Idx1", f"{info.jet_prefix}{match[1]}Idx2")
                if k in info.keys
            ]
            variables = {
                v: f"{target}_{v}" for v in ("pt", "eta", "phi") if f"{target}_{v}" in info.keys
            }
            info.links[f"{match[1]}s"] = {"link": {"jet_side": sides}, "variables": variables}
            info.slots[f"{match[1]}s"] = len(sides)
            info.notes.append(f"collection '{match[1]}s' attached to jets by {', '.join(sides)}")
    per_event = {b: a for b, a in arrays.items() if b in constituents and a.ndim == 2}
    links = {}
    for head, branches in group_by_prefix(per_event, info.jet_prefix).items():
        index = next((b for b in branches if JET_INDEX.match(b.partition("_")[2])), None)
        if index:
            links[head] = index
        else:
            info.notes.append(
                f"{head}_* lists are per event with no jet index ({head}_jetIdx): not read"
            )
    add_collections(
        info, {b: per_event[b] for b in per_event if b.partition("_")[0] in links}, 2, links
    )
    return per_jet


def count_branches(tree: Any) -> set[str]:
    """The counter branches of a TTree's jagged branches (none in an RNTuple)."""
    branches = getattr(tree, "branches", [])
    return {b.count_branch.name for b in branches if getattr(b, "count_branch", None) is not None}


def find_b_quarks(info: FileInfo, tree: Any, found: Names) -> None:
    """MC b-quark momenta for a ΔR label, and whether they are all zero (uproot-HZZ)."""
    momenta = [found.find(f"{q}_{c}") for q in B_QUARKS for c in ("px", "py", "pz")]
    if all(momenta):
        info.b_quarks = list(B_QUARKS)
        values = tree.arrays(momenta)
        info.b_quarks_empty = all(
            not np.any(ak.to_numpy(ak.flatten(values[m], axis=None))) for m in momenta
        )
