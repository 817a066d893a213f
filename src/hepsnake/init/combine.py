"""The findings of several input files as one: the first file's layout, kept to the branches
every file has (a variable only some files hold cannot be read for all samples)."""

import dataclasses
from collections import Counter

from hepsnake.errors import HepsnakeError
from hepsnake.init.info import FileInfo

SAME = ("reader", "tree", "entry", "unit", "label")  # what every file must share


def combine(infos: list[FileInfo]) -> FileInfo:
    """One :class:`FileInfo` for ``infos`` (entries, jets and label values summed); a file
    whose layout differs from the first is one error naming both."""
    first = infos[0]
    if len(infos) == 1:
        return first
    for other in infos[1:]:
        for attr in SAME:
            mine, theirs = getattr(other, attr), getattr(first, attr)
            if mine != theirs:
                raise HepsnakeError(
                    other.path, f"{attr} '{mine}' differs from '{theirs}' of {first.path}"
                )
    keys = set.intersection(*(i.keys for i in infos))
    values: Counter[int] = Counter()
    for info in infos:
        values.update(info.label_values)
    out = dataclasses.replace(
        first,
        keys=keys,
        entries=sum(i.entries for i in infos),
        jets=sum(i.jets for i in infos),
        label_values=dict(sorted(values.items())),
        label_candidates=[c for c in first.label_candidates if c in keys],
        constants=set().union(*(i.constants for i in infos)),
        taggers=[t for t in first.taggers if t in keys],
        weight=first.weight if first.weight in keys else None,
        event_number=first.event_number if first.event_number in keys else None,
        notes=list(first.notes),
    )
    missing = [b for b in (first.weight, first.event_number) if b and b not in keys]
    out.variables = {v: b for v, b in first.variables.items() if b in keys}
    missing += [b for b in first.variables.values() if b not in keys]
    out.collections, out.links = {}, {}
    for name, fields in first.collections.items():
        kept = {v: b for v, b in fields.items() if b in keys}
        missing += [b for b in fields.values() if b not in keys]
        if kept:
            out.collections[name] = kept
    for name, spec in first.links.items():
        link = [
            b for side in spec["link"].values() for b in ([side] if isinstance(side, str) else side)
        ]
        kept = {v: b for v, b in spec["variables"].items() if b in keys}
        if kept and set(link) <= keys:
            out.links[name] = {**spec, "variables": kept}
        else:
            missing.append(f"collection '{name}'")
    if missing:
        out.notes.append(f"not in every file, so not read: {', '.join(missing)}")
    return out
