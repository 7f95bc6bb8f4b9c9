"""What fetch reads from the catalogue: the files it may download, in the one order."""

from __future__ import annotations

import sqlite3

__all__ = ["fetch_candidates"]


def fetch_candidates(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Pending and failed files of ok items, most popular item first (derivatives aside:
    a compact tier fetches its derivative through its original's row)."""
    return db.execute(
        """SELECT f.id, f.item_id, f.name, f.size, f.md5, f.sha1, f.url, f.status,
                  f.fail_streak, f.last_attempt, f.kind, i.source, i.source_id
           FROM files f JOIN items i ON i.id = f.item_id
           WHERE i.status = 'ok' AND f.status IN ('pending', 'failed')
             AND f.compact IS NOT 'derivative'  -- a compact tier fetches the derivative
           ORDER BY i.popularity DESC, i.source, i.source_id, f.name"""
    ).fetchall()
