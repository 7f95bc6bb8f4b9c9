"""Which files go into which pack (catalogue only; no bytes are touched here).

A file is packed when it is in a pack that is not obsolete. New publishable files go to
the open pack of their item's tier, filling it up to `pack_size` (audio bytes); an item
that does not fit starts a new pack (an item larger than a pack is split across packs).
All open packs of a tier but the newest are full; `__init__` seals them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from typing import Any

from ccmirror.catalogue import transaction, utcnow
from ccmirror.errors import UnsafeName
from ccmirror.licence import publishable_verdicts
from ccmirror.mirror import Mirror
from ccmirror.tiers import rank_items

log = logging.getLogger("ccmirror.packs")


def pack_name(mirror_name: str, tier: int, seq: int) -> str:
    return f"{mirror_name}-t{tier}-{seq:04d}"


def in_quality(quality: str, copy_of: int | None, compact: str | None) -> bool:
    """Whether a file belongs in a pack of a tier of this quality: a compact tier packs the
    copies and the originals it keeps as they are; an original tier, the originals."""
    if quality == "compact":
        return copy_of is not None or compact in ("kept", "original")
    return copy_of is None


def _not_publishable_sql(allowed: tuple[str, ...]) -> str:
    marks = ",".join(f"'{v}'" for v in allowed)
    return (
        f"(i.status != 'ok' OR f.status != 'fetched' OR f.verdict IS NULL"
        f" OR f.verdict NOT IN ({marks}))"
    )


def retire_unpublishable(mirror: Mirror) -> dict[str, int]:
    """Sealed packs holding a file that may no longer be published become obsolete (their
    other files are then packed again); open packs just drop such files."""
    db = mirror.db
    bad = _not_publishable_sql(publishable_verdicts(mirror.manifest.licence.require_embedded))
    obsolete = dropped = 0
    with transaction(db):
        for r in db.execute(
            "SELECT DISTINCT p.id, p.name, i.source, i.source_id, i.status AS item_status,"
            " f.verdict FROM packs p JOIN pack_files pf ON pf.pack_id = p.id"
            " JOIN files f ON f.id = pf.file_id JOIN items i ON i.id = f.item_id"
            f" WHERE p.status = 'sealed' AND p.obsolete = 0 AND p.is_metadata = 0 AND {bad}"
        ).fetchall():
            why = (
                f"item {r['source']}:{r['source_id']} {r['item_status']}"
                if r["item_status"] != "ok"
                else f"a file of {r['source']}:{r['source_id']} is no longer publishable"
            )
            cur = db.execute(
                "UPDATE packs SET obsolete = 1, obsolete_reason = ? WHERE id = ? AND obsolete = 0",
                (why, r["id"]),
            )
            if cur.rowcount:
                obsolete += 1
                log.warning("pack %s is obsolete: %s", r["name"], why)
        cur = db.execute(
            "DELETE FROM pack_files WHERE rowid IN (SELECT pf.rowid FROM pack_files pf"
            " JOIN packs p ON p.id = pf.pack_id JOIN files f ON f.id = pf.file_id"
            f" JOIN items i ON i.id = f.item_id WHERE p.status = 'open' AND {bad})"
        )
        dropped = cur.rowcount
    return {"obsoleted": obsolete, "dropped": dropped}


def _candidates(mirror: Mirror) -> list[sqlite3.Row]:
    allowed = publishable_verdicts(mirror.manifest.licence.require_embedded)
    marks = ",".join("?" * len(allowed))
    return mirror.db.execute(
        "SELECT f.id, f.item_id, f.name, f.size, f.store_path, f.copy_of, f.compact,"
        " i.source, i.source_id"
        " FROM files f JOIN items i ON i.id = f.item_id"
        f" WHERE f.status = 'fetched' AND i.status = 'ok' AND f.verdict IN ({marks})"
        " AND f.store_path IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pack_files pf"
        " JOIN packs p ON p.id = pf.pack_id WHERE pf.file_id = f.id AND p.obsolete = 0)"
        " ORDER BY f.item_id, f.name",
        allowed,
    ).fetchall()


class _Open:
    """The open pack of a tier being filled."""

    def __init__(self, db: sqlite3.Connection, mirror_name: str, tier: int) -> None:
        self.db, self.mirror_name, self.tier = db, mirror_name, tier
        r = db.execute(
            "SELECT id, seq FROM packs WHERE tier = ? AND status = 'open' AND is_metadata = 0"
            " AND obsolete = 0 ORDER BY seq DESC LIMIT 1",
            (tier,),
        ).fetchone()
        self.id: int | None = r["id"] if r else None
        self.used = 0
        if r:
            self.used = db.execute(
                "SELECT coalesce(sum(f.size), 0) FROM pack_files pf JOIN files f"
                " ON f.id = pf.file_id WHERE pf.pack_id = ?",
                (r["id"],),
            ).fetchone()[0]

    def new(self) -> None:
        seq = self.db.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM packs WHERE tier = ? AND is_metadata = 0",
            (self.tier,),
        ).fetchone()[0]
        self.id = self.db.execute(
            "INSERT INTO packs (name, tier, seq, status, created_at) VALUES (?, ?, ?, 'open', ?)",
            (pack_name(self.mirror_name, self.tier, seq), self.tier, seq, utcnow()),
        ).lastrowid
        self.used = 0

    def add(self, file_id: int, path: str, size: int) -> None:
        if self.id is None:
            self.new()
        self.db.execute(
            "INSERT INTO pack_files (pack_id, file_id, path) VALUES (?, ?, ?)",
            (self.id, file_id, path),
        )
        self.used += size


def assign(mirror: Mirror) -> dict[str, Any]:
    """Put every publishable, unpacked file into a pack of its item's tier."""
    db = mirror.db
    cap = mirror.manifest.torrents.pack_size
    ranking = rank_items(db, mirror.manifest.tiers.shares)
    order = {
        it.id: n for n, it in enumerate(sorted(ranking, key=lambda it: (it.tier, -it.share, it.id)))
    }
    tier_of = {it.id: it.tier for it in ranking}
    by_item: dict[int, list[tuple[int, str, int]]] = {}
    missing = 0
    tiers = mirror.manifest.tiers
    for r in _candidates(mirror):
        if r["item_id"] in tier_of and not in_quality(
            tiers.quality_of(tier_of[r["item_id"]]), r["copy_of"], r["compact"]
        ):
            continue  # an original waiting for its compact copy, or a copy in an original tier
        try:
            size = os.stat(mirror.abspath(r["store_path"])).st_size
        except (OSError, UnsafeName) as e:  # gone, or a symlink planted to lead outside
            log.error(
                "%s:%s %s: store file unreadable: %s", r["source"], r["source_id"], r["name"], e
            )
            missing += 1
            continue
        if r["size"] is not None and r["size"] != size:
            log.error(
                "%s:%s %s: store file has %d bytes, catalogue says %d",
                r["source"],
                r["source_id"],
                r["name"],
                size,
                r["size"],
            )
            missing += 1
            continue
        path = f"{r['source']}/{r['source_id']}/{r['name']}"
        by_item.setdefault(r["item_id"], []).append((r["id"], path, size))
    files = items = 0
    with transaction(db):
        opened: dict[int, _Open] = {}
        for item_id in sorted(by_item, key=lambda i: order.get(i, len(order))):
            tier = tier_of[item_id]
            op = opened.get(tier) or opened.setdefault(tier, _Open(db, mirror.name, tier))
            entries = by_item[item_id]
            item_bytes = sum(s for _, _, s in entries)
            if op.id is not None and op.used and op.used + item_bytes > cap and item_bytes <= cap:
                op.new()  # keep the item in one pack: start the next one
            for file_id, path, size in entries:
                if op.used and op.used + size > cap:
                    op.new()
                op.add(file_id, path, size)
                db.execute(
                    "UPDATE files SET size = ? WHERE id = ? AND size IS NULL", (size, file_id)
                )
                files += 1
            items += 1
            db.execute("UPDATE items SET tier = ? WHERE id = ? AND tier IS NULL", (tier, item_id))
    return {"assigned_files": files, "assigned_items": items, "missing": missing}
