"""`harvest`: discover every source's items and files into the catalogue."""

from __future__ import annotations

import importlib
from typing import Any

from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter


def harvest(
    mirror: Mirror, *, workers: int = 8, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Harvest every source of the manifest, in order; sum their counts.

    Each source returns a dict of counts: numbers are summed, `refused` (reason -> n)
    merged; the per-source dicts are kept under `sources`.
    """
    reporter = reporter or NullReporter()
    total: dict[str, Any] = {"sources": [], "refused": {}}
    for source in mirror.manifest.sources:
        module = importlib.import_module(f"ccmirror.sources.{source.kind}")
        result = module.harvest_source(mirror, source, workers=workers, reporter=reporter)
        total["sources"].append({"kind": source.kind, **result})
        for key, value in result.items():
            if key == "refused":
                for reason, n in value.items():
                    total["refused"][reason] = total["refused"].get(reason, 0) + n
            elif isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total
