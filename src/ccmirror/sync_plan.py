"""`sync --dry-run`: what a run would do, read from the catalogue; touches nothing.

No lock, no writes: the catalogue is opened read-only (and not at all when it does not
exist yet), and no source is asked anything.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ccmirror import catalogue
from ccmirror.compact.run import compact_items
from ccmirror.errors import EXIT_OK
from ccmirror.licence import publishable_verdicts
from ccmirror.manifest import Manifest
from ccmirror.mirror import Mirror
from ccmirror.tiers import rank_items, select


def sync_dry_run(manifest: Manifest, *, max_bytes: int | None = None) -> dict[str, Any]:
    """What `sync` would do, read from the catalogue; creates and locks nothing.

    A data dir without a catalogue gets a plan that says everything starts with a harvest.
    """
    db_path = manifest.data_dir / "catalogue.sqlite"
    if not db_path.exists():
        out = plan(manifest, None, max_bytes)
        out["catalogue"] = "absent: the first run creates it"
        return out
    conn = catalogue.connect(db_path, readonly=True)
    try:
        return plan(manifest, conn, max_bytes)
    finally:
        conn.close()


def plan(
    manifest: Manifest, db: sqlite3.Connection | None, max_bytes: int | None
) -> dict[str, Any]:
    """The dry-run summary from an open (read-only) catalogue, or `db=None` for none yet.

    Per stage: harvest (the sources it would ask), fetch (pending files and bytes, what
    fits `max_bytes`), check (fetched files without a verdict), pack (publishable files not
    in a live pack, open packs, packs it would seal per tier: an estimate, files do not
    split), publish (whether anything would change).
    """
    sources = [{"kind": s.kind, "where": s.where} for s in manifest.sources]
    result: dict[str, Any] = {
        "dry_run": True,
        "mirror": manifest.name,
        "data_dir": str(manifest.data_dir),
        "catalogue": "present" if db is not None else "absent",
        "stages": {
            "harvest": {"sources": sources, "note": "asks each source for new or changed items"},
        },
        "failed": 0,
        "exit_code": EXIT_OK,
    }
    stages = result["stages"]
    if db is None:
        for name in ("fetch", "check", "compact", "pack"):
            stages[name] = {"note": "depends on what the harvest finds"}
        stages["publish"] = {"would_publish": True}
        return result

    def one(sql: str, *args: Any) -> sqlite3.Row | None:
        return db.execute(sql, args).fetchone()

    def rows(sql: str, *args: Any) -> list[sqlite3.Row]:
        return db.execute(sql, args).fetchall()

    # fetch: pending files of live items, most popular first, within the budget; with a
    # [mirror] budget, only the items its selection holds (as fetch does).
    pending = rows(
        "SELECT f.size, f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'pending' AND i.status = 'ok' AND f.compact IS NOT 'derivative'"
        " ORDER BY i.popularity DESC, i.source_id, f.name"
    )
    if manifest.budget is not None:
        held = select(Mirror(manifest, db), manifest.budget).chosen
        pending = [r for r in pending if r[1] in held]
    would_files = would_bytes = unknown = 0
    for r in pending:
        size = r[0]
        if size is None:
            unknown += 1
        elif max_bytes is not None and would_bytes + size > max_bytes:
            continue
        else:
            would_bytes += size
        would_files += 1
    failed = one(
        "SELECT count(*) FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'failed' AND i.status = 'ok'"
    )
    stages["fetch"] = {
        "pending_files": len(pending),
        "pending_bytes": sum(r[0] or 0 for r in pending),
        "would_fetch_files": would_files,
        "would_fetch_bytes": would_bytes,
        "unknown_size_files": unknown,
        "failed_files": failed[0] if failed else 0,
        "max_bytes": max_bytes,
    }

    # check: fetched files with no verdict yet.
    unchecked = one(
        "SELECT count(*), coalesce(sum(f.size), 0) FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'fetched' AND f.verdict IS NULL AND i.status = 'ok'"
    )
    stages["check"] = {
        "files_to_check": unchecked[0] if unchecked else 0,
        "bytes_to_check": unchecked[1] if unchecked else 0,
    }

    # compact: originals of compact tiers waiting for their copy (checked, not yet copied).
    todo = one(
        "SELECT count(*), coalesce(sum(f.size), 0) FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE f.status = 'fetched' AND i.status = 'ok' AND f.copy_of IS NULL"
        " AND f.compact IS NULL AND f.store_path IS NOT NULL"
    )
    in_compact = compact_items(db, manifest)
    stages["compact"] = {
        "compact_tiers": list(manifest.tiers.compact_tiers),
        "files_to_consider": (todo[0] if todo else 0) if in_compact else 0,
    }

    # pack: publishable fetched files not yet in a live pack, grouped by tier.
    verdicts = publishable_verdicts(manifest.licence.require_embedded)
    marks = ",".join("?" * len(verdicts))
    unpacked = rows(
        "SELECT f.item_id, coalesce(f.size, 0) FROM files f JOIN items i ON i.id = f.item_id"
        f" WHERE f.status = 'fetched' AND i.status = 'ok' AND f.verdict IN ({marks})"
        " AND NOT EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        "   WHERE pf.file_id = f.id AND p.obsolete = 0)",
        *verdicts,
    )
    open_packs = rows(
        "SELECT p.name, p.tier, coalesce(sum(f.size), 0) FROM packs p"
        " LEFT JOIN pack_files pf ON pf.pack_id = p.id LEFT JOIN files f ON f.id = pf.file_id"
        " WHERE p.status = 'open' AND p.obsolete = 0 AND p.is_metadata = 0"
        " GROUP BY p.id ORDER BY p.tier, p.seq"
    )
    waiting = rows(  # files whose tier cannot be sealed yet: still to fetch or to check
        "SELECT DISTINCT f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND (f.status = 'pending'"
        "   OR (f.status = 'fetched' AND f.verdict IS NULL))"
    )
    tier_of = _item_tiers(manifest, db)
    per_tier: dict[int, list[int]] = {}  # tier -> [files, bytes, open bytes]
    for item_id, size in unpacked:
        t = per_tier.setdefault(tier_of.get(item_id, 0), [0, 0, 0])
        t[0] += 1
        t[1] += size
    for _name, tier, size in open_packs:
        per_tier.setdefault(tier, [0, 0, 0])[2] += size
    busy = {tier_of.get(r[0], 0) for r in waiting}
    size = manifest.torrents.pack_size
    would_seal: dict[str, int] = {}
    for tier, (_n, b, open_b) in sorted(per_tier.items()):
        total = b + open_b
        # Full packs now; the partial remainder once nothing of the tier is pending.
        n = total // size + (1 if total % size and tier not in busy else 0)
        if n:
            would_seal[str(tier) if tier else "unranked"] = n
    stages["pack"] = {
        "files_to_pack": sum(t[0] for t in per_tier.values()),
        "bytes_to_pack": sum(t[1] for t in per_tier.values()),
        "open_packs": [r[0] for r in open_packs],
        "would_seal_packs_estimate": sum(would_seal.values()),
        "would_seal_per_tier": would_seal,
    }
    n_unpacked = stages["pack"]["files_to_pack"]
    stages["publish"] = {
        "would_publish": bool(would_seal or n_unpacked or would_files or not _published(manifest)),
    }
    return result


def _item_tiers(manifest: Manifest, db: sqlite3.Connection) -> dict[int, int]:
    """Item id -> tier, as `pack` would assign it (read-only)."""
    return {it.id: it.tier for it in rank_items(db, manifest.tiers.shares)}


def _published(manifest: Manifest) -> bool:
    return (manifest.data_dir / "public" / "torrents.json").exists()
