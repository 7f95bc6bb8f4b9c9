"""`harvest`: discover every source's items and files into the catalogue."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from ccmirror.catalogue import harvest_inputs
from ccmirror.errors import SourceUnreachable
from ccmirror.mirror import Mirror
from ccmirror.progress import NullReporter, Reporter
from ccmirror.sources.registry import source_kind

log = logging.getLogger("ccmirror.harvest")


def harvest(
    mirror: Mirror,
    *,
    workers: int = 8,
    reporter: Reporter | None = None,
    raise_unreachable: bool = True,
    full: bool = False,
) -> dict[str, Any]:
    """Harvest every source of the manifest, in order; sum their counts.

    Each source returns a dict of counts: numbers are summed, `refused` (reason -> n)
    merged, `warnings` (a list of sentences) joined, each naming its source; the
    per-source dicts are kept under `sources`. A source that cannot be reached
    does not stop the others; it is listed under `unreachable`, and with
    `raise_unreachable` (the `harvest` command) the run then ends in SourceUnreachable.
    `full`: forget what the sources' last complete harvests read (catalogue.harvest_inputs),
    so none skips its row pass for inputs unchanged since.
    """
    reporter = reporter or NullReporter()
    if full:
        harvest_inputs.forget(mirror.db)
    total: dict[str, Any] = {"sources": [], "refused": {}, "unreachable": [], "warnings": []}
    for source in mirror.manifest.sources:
        where = source.where
        harvest_source = source_kind(source.kind).harvester()
        # Said at once, before any request: a host that does not answer is not silence.
        log.info("%s: contacting %s...", source.kind, urlsplit(where).netloc or where)
        try:
            result = harvest_source(mirror, source, workers=workers, reporter=reporter)
        except SourceUnreachable as e:
            if not raise_unreachable:
                # The run's last line names it again: on stderr once is enough.
                log.error("harvest: %s", e.message, extra={"repeated_at_exit": True})
            total["unreachable"].append(e.message)
            total["sources"].append(
                {"kind": source.kind, "where": where, "ok": False, "error": e.message}
            )
            continue
        ok = not result.get("failed")
        total["sources"].append({"kind": source.kind, "where": where, "ok": ok, **result})
        for key, value in result.items():
            if key == "warnings":
                total["warnings"] += [f"{source.kind} {where}: {w}" for w in value]
            elif key == "refused":
                for reason, n in value.items():
                    total["refused"][reason] = total["refused"].get(reason, 0) + n
            elif key == "artwork":  # catalogue-wide totals; what each source changed, summed
                prev = total.get("artwork") or {}
                total["artwork"] = value | {
                    k: prev.get(k, 0) + value[k] for k in ("skipped", "unskipped")
                }
            elif isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    if raise_unreachable and total["unreachable"]:
        raise SourceUnreachable("; ".join(total["unreachable"]))
    return total
