"""Shared catalogue reads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ccmirror.catalogue.tiers import Ranking, ranking
from ccmirror.catalogue.tiersums import tier_file_rows, tier_items


def store_bytes(db: sqlite3.Connection) -> int:
    """Bytes the store holds: fetched files still in `store/` (not quarantined, not an
    original that left for its compact copy)."""
    return db.execute(
        "SELECT coalesce(sum(size), 0) FROM files WHERE status = 'fetched'"
        " AND store_path IS NOT NULL AND quarantine_path IS NULL"
    ).fetchone()[0]


def _file_statuses(db: sqlite3.Connection) -> list[str]:
    """The statuses files hold, one files_status seek each."""
    found: list[str] = []
    (v,) = db.execute("SELECT min(status) FROM files").fetchone()
    while v is not None:
        found.append(v)
        (v,) = db.execute("SELECT min(status) FROM files WHERE status > ?", (v,)).fetchone()
    return found


def status_counts(db: sqlite3.Connection) -> dict[str, Any]:
    """What the mirror holds: items and files by status, bytes, files by verdict. Read
    from indexes only: 'ok' items from items_rank_ok, the rest and their refusal reasons
    from items_not_ok (0055), files from files_item_sums in one pass with a column per
    status they hold (a GROUP BY would sort every file; files_status lacks the size)."""
    items: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for status, reason, n in db.execute(
        "SELECT status, reason, count(*) FROM items WHERE status != 'ok' GROUP BY status, reason"
    ):
        items[status] = items.get(status, 0) + n
        if status == "refused":
            key = "?" if reason is None else reason
            reasons[key] = reasons.get(key, 0) + n
    (ok,) = db.execute("SELECT count(*) FROM items WHERE status = 'ok'").fetchone()
    if ok:
        items["ok"] = ok
    items = dict(sorted(items.items()))
    statuses = _file_statuses(db)
    files: dict[str, dict[str, int]] = {}
    if statuses:
        cols = ", ".join(
            "sum(status = ?), coalesce(sum(CASE WHEN status = ? THEN size END), 0)"
            for _ in statuses
        )
        row = db.execute(
            f"SELECT {cols} FROM files INDEXED BY files_item_sums",
            [s for s in statuses for _ in range(2)],
        ).fetchone()
        for k, status in enumerate(statuses):
            files[status] = {"files": row[2 * k], "bytes": row[2 * k + 1]}
    verdicts = {
        r["verdict"]: r["n"]
        for r in db.execute(
            "SELECT verdict, count(*) AS n FROM files WHERE verdict IS NOT NULL GROUP BY verdict"
        )
    }
    # Most items first; equal counts by reason (the order the old GROUP BY gave them).
    refused = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return {
        "items": items,
        "files": files,
        "verdicts": verdicts,
        "refused": refused,
        "stored_bytes": files.get("fetched", {}).get("bytes", 0),
    }


def _tier_row(tier: int) -> dict[str, Any]:
    return {
        "tier": tier,
        "items": 0,
        "files": 0,
        "fetched": 0,
        "bytes_stored": 0,
        "verdicts": {},
        "packed_files": 0,
        "packs": {"sealed": 0, "open": 0, "obsolete": 0},
    }


def tier_status(
    db: sqlite3.Connection, shares: tuple[float, ...], rk: Ranking | None = None
) -> list[dict[str, Any]]:
    """Per tier (the ranking of 'ok' items, `catalogue.tiers`): items, files, files
    fetched, bytes stored, files by verdict, files in live packs, and packs
    sealed/open/obsolete (by the tier a pack was made for). Read-only; aggregates in SQL."""
    rows: dict[int, dict[str, Any]] = {}
    rk = rk or ranking(db, shares)
    for tier, n in tier_items(db, rk).items():
        rows.setdefault(tier, _tier_row(tier))["items"] = n
    for r in tier_file_rows(db, rk):
        row = rows[r["tier"]]
        row["files"] += r["n"]
        row["fetched"] += r["fetched"]
        row["bytes_stored"] += r["stored"]
        row["packed_files"] += r["packed"]
        if r["verdict"] is not None:
            row["verdicts"][r["verdict"]] = row["verdicts"].get(r["verdict"], 0) + r["n"]
    for r in db.execute(
        "SELECT tier, status, obsolete, count(*) AS n FROM packs WHERE is_metadata = 0"
        " GROUP BY tier, status, obsolete"
    ):
        key = "obsolete" if r["obsolete"] else r["status"]
        rows.setdefault(r["tier"], _tier_row(r["tier"]))["packs"][key] += r["n"]
    for row in rows.values():
        row["verdicts"] = dict(sorted(row["verdicts"].items()))
    return [rows[k] for k in sorted(rows)]


def pack_status(db: sqlite3.Connection, data_dir: Path) -> dict[str, dict[str, int]]:
    """Packs (audio) by state, and the published torrents: live ones (packs and metadata),
    their payload bytes, obsolete ones, and live ones whose .torrent is missing on disk or
    damaged (not the size that was published)."""
    packs = {"sealed": 0, "open": 0, "obsolete": 0}
    for r in db.execute(
        "SELECT status, obsolete, count(*) AS n FROM packs WHERE is_metadata = 0"
        " GROUP BY status, obsolete"
    ):
        packs["obsolete" if r["obsolete"] else r["status"]] += r["n"]
    torrents = {
        "published": 0,
        "metadata": 0,
        "data_bytes": 0,
        "obsolete": 0,
        "missing": 0,
        "damaged": 0,
    }
    for r in db.execute(
        "SELECT is_metadata, obsolete, torrent_path, torrent_size,"
        " coalesce(data_size, 0) AS size FROM packs WHERE status = 'sealed'"
    ):
        if r["obsolete"]:
            torrents["obsolete"] += 1
            continue
        torrents["published"] += 1
        torrents["metadata"] += r["is_metadata"]
        torrents["data_bytes"] += r["size"]
        try:
            on_disk = (data_dir / r["torrent_path"]).stat().st_size if r["torrent_path"] else None
        except OSError:
            on_disk = None
        if on_disk is None:
            torrents["missing"] += 1
        elif r["torrent_size"] is not None and on_disk != r["torrent_size"]:
            # A stat, not a parse: `pack` checks info-hashes and rebuilds what differs.
            torrents["damaged"] += 1
    return {"packs": packs, "torrents": torrents}


def mirror_status(
    db: sqlite3.Connection, shares: tuple[float, ...], data_dir: Path, rk: Ranking | None = None
) -> dict:
    """`status_counts` (every key kept) plus `tiers` (see `tier_status`), `packs` and
    `torrents` (see `pack_status`)."""
    tiers = tier_status(db, shares, rk)
    return status_counts(db) | {"tiers": tiers} | pack_status(db, data_dir)


def files_to_judge(db: sqlite3.Connection, also: list[int]) -> list[sqlite3.Row]:
    """Files of live items that a check will judge for the first time: fetched without a
    verdict, or among `also` (file ids a fetch is about to bring), not in a live pack;
    with their item's declared licence (what a dry run can judge without the bytes)."""
    return db.execute(
        "SELECT f.id, f.item_id, f.name, f.size, f.copy_of, f.compact, i.source, i.source_id,"
        " i.licence_url,"
        " i.licence_title, i.declared_licence_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND ((f.status = 'fetched' AND f.verdict IS NULL)"
        "   OR f.id IN (SELECT value FROM json_each(?)))"
        " AND NOT EXISTS (SELECT 1 FROM pack_files pf JOIN packs p ON p.id = pf.pack_id"
        "   WHERE pf.file_id = f.id AND p.obsolete = 0)"
        " ORDER BY f.item_id, f.name",
        (json.dumps(also),),
    ).fetchall()


def pending_files(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(file id, item id) of every pending file of a live item."""
    return db.execute(
        "SELECT f.id, f.item_id FROM files f JOIN items i ON i.id = f.item_id"
        " WHERE i.status = 'ok' AND f.status = 'pending'"
    ).fetchall()


def compact_candidates(db: sqlite3.Connection) -> int:
    """Fetched originals that a compact tier may copy (checked or not, not yet copied)."""
    return int(
        db.execute(
            "SELECT count(*) FROM files f JOIN items i ON i.id = f.item_id"
            " WHERE f.status = 'fetched' AND i.status = 'ok' AND f.copy_of IS NULL"
            " AND f.compact IS NULL AND f.store_path IS NOT NULL"
        ).fetchone()[0]
    )
