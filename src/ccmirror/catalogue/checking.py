"""The check stage's reads: the fetched files whose verdict may need deciding."""

from __future__ import annotations

import json
import sqlite3
from array import array

_SELECT = """
SELECT f.id, f.name, f.size, f.md5, f.sha1, f.store_path, f.verdict, f.checked_size, f.checked_mtime_ns,
       f.checked_key, f.quarantine_path, f.artists, f.track, f.genres, f.composer, f.lyricist,
       f.producer, f.engineer, f.publisher, f.release_date, f.codec, f.bit_rate,
       f.sample_rate, f.channels, f.duration, f.kind, i.source, i.source_id, i.licence_url,
       i.licence_title, i.declared_licence_id
FROM files f JOIN items i ON i.id = f.item_id
WHERE f.status = 'fetched' AND i.status = 'ok'
  AND NOT (f.store_path IS NULL AND f.compact IN ('copied', 'derivative'))  -- left for a copy
ORDER BY f.id
"""
_SELECT_IDS = _SELECT.replace(
    "ORDER BY f.id", "  AND f.id IN (SELECT value FROM json_each(?))\nORDER BY f.id"
)


def fetched(db: sqlite3.Connection) -> sqlite3.Cursor:
    """Every fetched file of an ok item (with its item's licence fields), in id order."""
    return db.execute(_SELECT)


def rows_of(db: sqlite3.Connection, ids: array[int]) -> list[sqlite3.Row]:
    """The rows of `ids` as `fetched` reads them (one statement, whatever their number)."""
    return db.execute(_SELECT_IDS, (json.dumps(ids.tolist()),)).fetchall()
