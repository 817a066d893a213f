"""ATLAS DAOD_PHYSLITE reader: jets of one container with their associated tracks.

Works on the TTree (``CollectionTree``, branches ``Container.var``) and RNTuple (``EventData``,
fields ``Container:var``) forms. Tracks are attached to jets by ghost-association element links
(``GhostTrack``) or by a ΔR cone; everything is computed with numpy over flat offsets.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from hepsnake.config.contracts import PhysliteReader
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.chunks import Jagged, JetChunk, exclusive_cumsum
from hepsnake.io.root import (
    ENTRY_INDEX,
    TreeSource,
    flat_values,
    open_tree,
    require_keys,
    tree_keys,
)

TREE_NAMES = ("CollectionTree", "EventData")

# Track variables computed from stored ones (never read from the file), with their inputs.
DERIVED: dict[str, tuple[str, ...]] = {
    "pt": ("theta", "qOverP"),
    "eta": ("theta",),
    "z0SinTheta": ("z0", "theta"),
    "deta": ("theta",),
    "dphi": ("phi",),
    "dr": ("theta", "phi"),
}


def physlite_variables(spec: PhysliteReader) -> dict[str, list[str]]:
    """The variables a ``physlite`` reader ``spec`` writes, per dataset: the jet and
    ``btagging`` variables with ``eventNumber`` and ``mcEventWeight``, and the tracks'."""
    btag = spec.btagging.variables if spec.btagging is not None else ()
    jets = [*spec.jets, *btag, "eventNumber", "mcEventWeight"]
    return {"jets": list(dict.fromkeys(jets)), "tracks": list(spec.tracks)}


def open_physlite(path: str, tree: str | None) -> Any:
    """Open the PHYSLITE event tree ``tree``, or the first of TREE_NAMES the file has."""
    if tree is not None:
        return open_tree(path, tree)
    for name in TREE_NAMES:
        try:
            return open_tree(path, name)
        except HepsnakeError as exc:
            if not exc.cause.startswith(f"no tree '{name}'"):
                raise
    looked = " or ".join(f"'{n}'" for n in TREE_NAMES)
    raise HepsnakeError(path, f"no PHYSLITE tree ({looked}); set 'tree' explicitly")


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return (dphi + np.pi) % (2 * np.pi) - np.pi


@dataclass
class PhysliteSource(TreeSource):
    """Jets of a PHYSLITE file, one chunk of events at a time, with their tracks.

    Jet columns are the ``jets`` aux variables, the ``btagging`` variables (looked up through
    each jet's ``btaggingLink``) plus ``eventNumber`` and ``mcEventWeight`` (first MC weight,
    1.0 where the file has none); the ``tracks`` collection holds the ``tracks`` variables of
    each jet's associated tracks, in jet order. ``eventNumber`` is EventInfo's (split or
    unsplit), else its ``mcEventNumber``, else ``first_event`` plus the entry index:
    :attr:`event_number_source` says which. ``cut_names`` that are jet aux variables but not
    stored jet variables are read into :attr:`JetChunk.aux` for the cuts. Energies are MeV.
    """

    path: str
    spec: PhysliteReader
    first_event: int = 0
    cut_names: Sequence[str] = ()
    energy_unit: str = "MeV"

    def __post_init__(self) -> None:
        self.tree = open_physlite(self.path, self.spec.tree)
        self.sep = "." if hasattr(self.tree, "branches") else ":"
        self.jet_vars: list[str] = list(self.spec.jets)
        self.track_vars: list[str] = list(self.spec.tracks)
        keys = tree_keys(self.tree)

        jet_needed = dict.fromkeys([*self.jet_vars, "eta", "phi"])
        self.jet_branches = {v: self.aux(self.spec.jet_container, v) for v in jet_needed}
        stored = [v for v in self.track_vars if v not in DERIVED]
        inputs = [i for v in self.track_vars if v in DERIVED for i in DERIVED[v]]
        track_needed = dict.fromkeys(["theta", "phi", *stored, *inputs])
        self.track_branches = {v: self.aux(self.spec.track_container, v) for v in track_needed}

        info = self.spec.event_info
        candidates = [
            self.aux(info, "eventNumber"),
            f"{info}Aux./{info}Aux.eventNumber" if self.sep == "." else f"{info}Aux:eventNumber",
            self.aux(info, "mcEventNumber"),
        ]
        self.event_number: str | None = next((c for c in candidates if c in keys), None)
        self.event_number_source = self.event_number or ENTRY_INDEX
        self.aux_branches = {
            n: self.aux(self.spec.jet_container, n)
            for n in self.cut_names
            if n not in self.jet_vars and self.aux(self.spec.jet_container, n) in keys
        }
        self.cut_aux = list(self.aux_branches)
        self.btag = self._btagging_branches()
        # btaggingLink: split into member branches (TTree), or one record field (RNTuple)
        self.btag_link: dict[str, str] = {}
        if self.btag:
            link = self.aux(self.spec.jet_container, "btaggingLink")
            members = {m: f"{link}/{link}.{m}" for m in ("m_persKey", "m_persIndex")}
            self.btag_link = members if members["m_persKey"] in keys else {"": link}
        weights = self.aux(info, "mcEventWeights")
        self.weights = weights if weights in keys else None

        # the association actually used: GhostTrack links, or a ΔR cone of radius self.cone
        self.links: str | None = None
        self.cone = float(self.spec.dr_cone)
        if self.spec.association == "ghost":
            link_branch = self.aux(self.spec.jet_container, "GhostTrack")
            if link_branch in keys or self.spec.dr_fallback is None:
                self.links = link_branch
            else:
                self.cone = float(self.spec.dr_fallback)

        self.branches = list(
            dict.fromkeys(
                [
                    *self.jet_branches.values(),
                    *self.track_branches.values(),
                    *self.aux_branches.values(),
                    *self.btag.values(),
                    *self.btag_link.values(),
                    *([self.event_number] if self.event_number else []),
                    *([self.links] if self.links else []),
                    *([self.weights] if self.weights else []),
                ]
            )
        )
        require_keys(self.path, self.tree, self.branches)

    def _btagging_branches(self) -> dict[str, str]:
        """Branch of each variable of the ``btagging`` option."""
        btag = self.spec.btagging
        if btag is None:
            return {}
        clash = [v for v in btag.variables if v in self.jet_vars]
        if clash:
            raise HepsnakeError(self.path, f"btagging variable '{clash[0]}' is also in jets")
        return {v: self.aux(btag.container, v) for v in btag.variables}

    def aux(self, container: str, var: str) -> str:
        """The branch (TTree) or field (RNTuple) name of dynamic aux variable ``var``."""
        return f"{container}AuxDyn{self.sep}{var}"

    def _to_chunk(self, arrays: ak.Array, offset: int) -> JetChunk:
        n_events = len(arrays)
        jets_per_event = self._counts(arrays, self.jet_branches["eta"])
        event_of_jet = np.repeat(np.arange(n_events), jets_per_event)
        jet_cols = {v: self._flat(arrays, b, jets_per_event) for v, b in self.jet_branches.items()}
        jets = {v: jet_cols[v] for v in self.jet_vars}
        jets |= self._btag_scores(arrays, jets_per_event, event_of_jet, offset)
        if self.event_number is None:
            first = self.first_event + offset
            jets["eventNumber"] = np.arange(first, first + n_events, dtype=np.int64)[event_of_jet]
        else:
            numbers = arrays[self.event_number]
            if numbers.ndim != 1:
                raise HepsnakeError(self.path, f"'{self.event_number}' is not one number per event")
            jets["eventNumber"] = np.asarray(ak.to_numpy(numbers))[event_of_jet]
        aux = {n: self._flat(arrays, b, jets_per_event) for n, b in self.aux_branches.items()}
        if self.weights is None:
            jets["mcEventWeight"] = np.ones(len(event_of_jet), dtype=np.float32)
        else:
            first = ak.fill_none(ak.firsts(arrays[self.weights], axis=1), 1.0)
            jets["mcEventWeight"] = ak.to_numpy(first).astype(np.float32)[event_of_jet]

        tracks_per_event = self._counts(arrays, self.track_branches["theta"])
        track_cols = {
            v: self._flat(arrays, b, tracks_per_event) for v, b in self.track_branches.items()
        }
        track_start = exclusive_cumsum(tracks_per_event)
        if self.links is not None:
            jet_of_track, track_index = self._ghost(
                arrays[self.links], offset, jets_per_event, event_of_jet, tracks_per_event
            )
            track_index += track_start[event_of_jet[jet_of_track]]
        else:
            jet_of_track, track_index = self._cone(
                jet_cols, track_cols, event_of_jet, tracks_per_event, track_start
            )
        counts = np.bincount(jet_of_track, minlength=len(event_of_jet)).astype(np.int64)
        fields = self._track_fields(jet_cols, track_cols, jet_of_track, track_index)
        return JetChunk(jets, {"tracks": Jagged(counts, fields)}, aux)

    def _btag_scores(
        self,
        arrays: ak.Array,
        jets_per_event: np.ndarray,
        event_of_jet: np.ndarray,
        offset: int,
    ) -> dict[str, np.ndarray]:
        """The ``btagging`` variables of each jet's b-tagging object, by ``btaggingLink``
        (the b-tagging container is not in jet order). A missing link is an error."""
        if not self.btag_link:
            return {}
        if "" in self.btag_link:
            link_branch = self.btag_link[""]
            links = arrays[link_branch]
            if links.ndim != 2 or not np.array_equal(ak.num(links, axis=1), jets_per_event):
                raise HepsnakeError(self.path, f"'{link_branch}' is not one link per jet")
            key = flat_values(links["m_persKey"])
            index = flat_values(links["m_persIndex"]).astype(np.int64)
        else:
            link_branch = self.btag_link["m_persIndex"]
            key = self._flat(arrays, self.btag_link["m_persKey"], jets_per_event)
            index = self._flat(arrays, link_branch, jets_per_event).astype(np.int64)
        per_event = self._counts(arrays, next(iter(self.btag.values())))
        bad = (key == 0) | (index >= per_event[event_of_jet])
        if bad.any():
            jet = int(np.argmax(bad))
            event = int(event_of_jet[jet])
            raise HepsnakeError(
                self.path,
                f"'{link_branch}' of jet {jet - int(exclusive_cumsum(jets_per_event)[event])}"
                f" in entry {offset + event} points to no "
                f"'{self.spec.btagging.container}' object (index {index[jet]}, "
                f"{per_event[event]} objects)",
            )
        flat_index = index + exclusive_cumsum(per_event)[event_of_jet]
        return {v: self._flat(arrays, b, per_event)[flat_index] for v, b in self.btag.items()}

    def _counts(self, arrays: ak.Array, branch: str) -> np.ndarray:
        """Items per event of a jagged per-event branch."""
        values = arrays[branch]
        if values.ndim != 2:
            raise HepsnakeError(self.path, f"'{branch}' is not one number per object")
        return ak.to_numpy(ak.num(values, axis=1)).astype(np.int64)

    def _flat(self, arrays: ak.Array, branch: str, per_event: np.ndarray) -> np.ndarray:
        """Flat values of a per-object branch, checked against the object counts."""
        values = arrays[branch]
        if values.ndim != 2 or not np.array_equal(ak.to_numpy(ak.num(values, axis=1)), per_event):
            raise HepsnakeError(self.path, f"'{branch}' is not one number per object")
        try:
            return flat_values(values)
        except Exception as exc:
            raise HepsnakeError(
                self.path, f"'{branch}' is not numeric ({first_line(exc)})"
            ) from exc

    def _ghost(
        self,
        links: ak.Array,
        offset: int,
        jets_per_event: np.ndarray,
        event_of_jet: np.ndarray,
        tracks_per_event: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(jet, index within its event's tracks) of every kept GhostTrack link, in jet order."""
        if not np.array_equal(ak.to_numpy(ak.num(links, axis=1)), jets_per_event):
            raise HepsnakeError(self.path, f"'{self.links}' does not have one entry per jet")
        per_jet = ak.flatten(links, axis=1)
        links_per_jet = ak.to_numpy(ak.num(per_jet, axis=1))
        key = flat_values(per_jet["m_persKey"])
        index = flat_values(per_jet["m_persIndex"]).astype(np.int64)
        jet_of_link = np.repeat(np.arange(len(event_of_jet)), links_per_jet)
        wanted = self.spec.track_key
        keep = key != 0
        if wanted is not None:
            keep &= key == wanted
        jet_of_link, index = jet_of_link[keep], index[keep]
        event = event_of_jet[jet_of_link]
        outside = index >= tracks_per_event[event]
        if outside.any():
            first = int(np.argmax(outside))
            raise HepsnakeError(
                self.path,
                f"'{self.links}' index {index[first]} is out of range for "
                f"'{self.spec.track_container}' ({tracks_per_event[event[first]]} tracks) "
                f"in entry {offset + int(event[first])}",
            )
        return jet_of_link, index

    def _cone(
        self,
        jet_cols: dict[str, np.ndarray],
        track_cols: dict[str, np.ndarray],
        event_of_jet: np.ndarray,
        tracks_per_event: np.ndarray,
        track_start: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(jet, flat track index) of every track of the event within ΔR < cone of the jet."""
        candidates = tracks_per_event[event_of_jet]
        jet_of_pair = np.repeat(np.arange(len(event_of_jet)), candidates)
        local = np.arange(int(candidates.sum())) - np.repeat(
            exclusive_cumsum(candidates), candidates
        )
        track_index = track_start[event_of_jet][jet_of_pair] + local
        theta = track_cols["theta"][track_index].astype(np.float64)
        deta = -np.log(np.tan(theta / 2)) - jet_cols["eta"][jet_of_pair]
        phi = track_cols["phi"][track_index].astype(np.float64)
        dphi = wrap_phi(phi - jet_cols["phi"][jet_of_pair])
        keep = np.hypot(deta, dphi) < self.cone
        return jet_of_pair[keep], track_index[keep]

    def _track_fields(
        self,
        jet_cols: dict[str, np.ndarray],
        track_cols: dict[str, np.ndarray],
        jet_of_track: np.ndarray,
        track_index: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The requested track variables of the associated tracks, stored or derived."""
        theta = track_cols["theta"][track_index].astype(np.float64)
        eta = -np.log(np.tan(theta / 2))
        phi = track_cols["phi"][track_index].astype(np.float64)
        deta = eta - jet_cols["eta"][jet_of_track]
        dphi = wrap_phi(phi - jet_cols["phi"][jet_of_track])
        fields: dict[str, np.ndarray] = {}
        for var in self.track_vars:
            if var == "pt":
                q_over_p = track_cols["qOverP"][track_index].astype(np.float64)
                with np.errstate(divide="ignore"):
                    value = np.abs(np.sin(theta) / q_over_p)
            elif var == "eta":
                value = eta
            elif var == "z0SinTheta":
                value = track_cols["z0"][track_index] * np.sin(theta)
            elif var == "deta":
                value = deta
            elif var == "dphi":
                value = dphi
            elif var == "dr":
                value = np.hypot(deta, dphi)
            else:
                fields[var] = track_cols[var][track_index]
                continue
            fields[var] = value.astype(np.float32)
        return fields
