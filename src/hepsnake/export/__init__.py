"""Export a trained tagger to ONNX (fp32 and int8), validate it and benchmark it on CPU."""

from typing import Any


def athena_layout(config: dict[str, Any]) -> bool:
    """Whether rule ``export`` also writes the Salt/Athena layout: ``export.athena``, or where
    that is null (the default) whether the config is ATLAS-style: a sample read by a
    ``physlite`` reader. ``config`` is validated (its samples a list)."""
    wanted = config.get("export", {}).get("athena")
    if wanted is not None:
        return bool(wanted)
    readers = config.get("readers", {})
    return any(
        readers.get(s.get("reader"), {}).get("type") == "physlite"
        for s in config.get("samples", [])
    )
