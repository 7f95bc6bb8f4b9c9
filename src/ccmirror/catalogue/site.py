"""What the public page reads from the catalogue: sealed packs, what they hold, by licence."""

from __future__ import annotations

import sqlite3

__all__ = [
    "items_ok",
    "packed_items_per_tier",
    "packed_licences",
    "packed_totals",
    "published_state",
    "sealed_packs",
    "withdrawal_count",
]


def sealed_packs(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every sealed pack (content, then metadata), by tier and sequence."""
    return db.execute(
        "SELECT * FROM packs WHERE status = 'sealed' ORDER BY is_metadata, tier, seq"
    ).fetchall()


def packed_items_per_tier(db: sqlite3.Connection) -> dict[int, int]:
    """Tier -> ok items with a file in a pack that is not obsolete."""
    return {
        r["tier"]: r["n"]
        for r in db.execute(
            "SELECT i.tier, count(DISTINCT i.id) AS n FROM items AS i WHERE i.status = 'ok'"
            " AND EXISTS (SELECT 1 FROM files AS f JOIN pack_files AS pf ON pf.file_id = f.id"
            " JOIN packs AS p ON p.id = pf.pack_id WHERE f.item_id = i.id AND p.obsolete = 0)"
            " GROUP BY i.tier"
        )
    }


def packed_licences(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Per licence id: files and bytes in live content packs (licence_id, n, bytes, url)."""
    return db.execute(
        "SELECT f.licence_id, count(DISTINCT f.id) AS n, sum(f.size) AS bytes,"
        " min(f.licence_url) AS url FROM files AS f"
        " JOIN pack_files AS pf ON pf.file_id = f.id JOIN packs AS p ON p.id = pf.pack_id"
        " WHERE p.obsolete = 0 AND p.is_metadata = 0 GROUP BY f.licence_id ORDER BY n DESC, 1"
    ).fetchall()


def packed_totals(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(files, items, bytes) in live content packs."""
    r = db.execute(
        "SELECT count(DISTINCT pf.file_id), count(DISTINCT f.item_id),"
        " coalesce(sum(f.size), 0) FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
        " JOIN files AS f ON f.id = pf.file_id WHERE p.obsolete = 0 AND p.is_metadata = 0"
    ).fetchone()
    return r[0], r[1], r[2]


def items_ok(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM items WHERE status = 'ok'").fetchone()[0]


def withdrawal_count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM withdrawals").fetchone()[0]


_PUBLISHED_STATE = (
    # Popularity moves the page's shares and tiers even when nothing else changed.
    "SELECT count(*), coalesce(max(id), 0), coalesce(max(source_updated), ''),"
    " round(total(popularity), 3) FROM items",
    "SELECT status, count(*) FROM items GROUP BY status ORDER BY status",
    "SELECT status, coalesce(verdict, ''), count(*), coalesce(sum(size), 0),"
    " coalesce(max(checked_at), '') FROM files GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT name, status, obsolete, coalesce(info_hash_v1, ''), coalesce(info_hash_v2, ''),"
    " coalesce(torrent_size, 0) FROM packs ORDER BY id",
    "SELECT count(*) FROM pack_files",
)


def published_state(db: sqlite3.Connection) -> list[list[tuple]]:
    """A few aggregates that change whenever what publish renders changes: packs, item
    and file states, popularity (milliseconds on a large catalogue)."""
    return [[tuple(r) for r in db.execute(sql).fetchall()] for sql in _PUBLISHED_STATE]
