"""The FMA harvest's SQL: a batch of rows staged, compared and written set-based.

Per batch (one transaction): the rows' (source_id, row fingerprint) go into a TEMP
staging table with executemany; one join against `items` counts the unchanged rows by
status (an unchanged row costs one fingerprint compare, in SQL) and another returns
only the new and changed ones. New items and files go in with executemany under
explicit ids (the write lock is held, so `max(id) + 1` is ours), with the search index
triggers standing aside (`bulk_load`, migration 0050) and the batch's index rows
inserted afterwards from the same views the triggers use. Changed rows (rare) take
the row-by-row path, triggers and all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ccmirror.catalogue.recordings import SOURCE_COLUMNS

SOURCE = "fma"
CACHE_KIB = 128 * 1024  # page cache during a harvest: the indexes' hot pages stay put
ITEM_WRITE = (
    "title",
    "creator",
    "album",
    "date",
    "source_url",
    "licence_url",
    "licence_title",
    "declared_licence_id",
    "popularity",
    "extra",
    "status",
    "reason",
)
RECORDING = SOURCE_COLUMNS  # the file's per-recording columns the harvest writes
_MATCH = (
    "FROM temp.fma_batch AS b"
    " JOIN items AS i ON i.source = 'fma' AND i.source_id = b.source_id"
    " LEFT JOIN files AS f ON f.id = (SELECT min(id) FROM files WHERE item_id = i.id)"
)


@dataclass
class Known:
    """A staged row that is new (`item_id` None) or whose fingerprint differs."""

    n: int  # position in the batch
    item_id: int | None
    fingerprint: str | None
    status: str | None
    reason: str | None
    file: tuple[Any, ...] | None  # (name, url, size, sha1, format) when its bytes are stored


@contextmanager
def bulk_session(db: sqlite3.Connection) -> Iterator[None]:
    """A larger page cache and the staging table for the length of one harvest."""
    old = db.execute("PRAGMA cache_size").fetchone()[0]
    old_temp = db.execute("PRAGMA temp_store").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.execute("PRAGMA temp_store = MEMORY")  # the staging table: one batch, small
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS fma_batch"
        " (n INTEGER PRIMARY KEY, source_id TEXT NOT NULL, prefix TEXT NOT NULL)"
    )
    try:
        yield
    finally:
        db.execute("DROP TABLE IF EXISTS temp.fma_batch")
        db.execute(f"PRAGMA cache_size = {int(old)}")
        # Later steps of the same run (sync: tiers, plan) sort big GROUP BYs: on disk.
        db.execute(f"PRAGMA temp_store = {int(old_temp)}")


def range_prefixes(db: sqlite3.Connection, lo: str, hi: str) -> str | None:
    """The row fingerprints (`items.fingerprint` up to its ':') of the FMA items whose
    source_id is between `lo` and `hi`, concatenated (None when there is none).

    A batch whose own fingerprints, concatenated, equal this is unchanged, whatever the
    order SQLite concatenates in: each piece has a fixed width and names its own row
    (the track id is one of the fields hashed), so equal strings mean every row of the
    batch has its item's fingerprint and the range holds no other item. A voided (NULL)
    or foreign fingerprint makes the lengths or the text differ."""
    return db.execute(
        "SELECT group_concat(substr(fingerprint, 1, 17), '') FROM items"
        " WHERE source = 'fma' AND source_id BETWEEN ? AND ?",
        (lo, hi),
    ).fetchone()[0]


def range_counts(
    db: sqlite3.Connection, lo: str, hi: str
) -> list[tuple[str, str | None, int, int]]:
    """What `unchanged` returns, for every FMA item whose source_id is between `lo` and
    `hi`: (status, reason, items, bytes of the first files of those that are ok)."""
    rows = db.execute(
        "SELECT i.status, i.reason, count(*), coalesce(sum(CASE WHEN i.status = 'ok' THEN"
        " (SELECT size FROM (SELECT min(id), size FROM files WHERE item_id = i.id)) END), 0)"
        " FROM items AS i WHERE i.source = 'fma' AND i.source_id BETWEEN ? AND ?"
        " GROUP BY i.status, i.reason",
        (lo, hi),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def source_is_empty(db: sqlite3.Connection) -> bool:
    """No item of the FMA source in the catalogue (a first harvest)."""
    return db.execute("SELECT 1 FROM items WHERE source = 'fma' LIMIT 1").fetchone() is None


def stage(db: sqlite3.Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """(position, source_id, row fingerprint + ':') of each row of the batch."""
    db.execute("DELETE FROM temp.fma_batch")
    db.executemany("INSERT INTO temp.fma_batch VALUES (?, ?, ?)", rows)


def unchanged(db: sqlite3.Connection) -> list[tuple[str, str | None, int, int]]:
    """(status, reason, rows, bytes of their first files) of the staged rows whose
    catalogue fingerprint starts with theirs."""
    return db.execute(
        "SELECT i.status, i.reason, count(*), coalesce(sum(f.size), 0) "
        + _MATCH
        + " WHERE substr(i.fingerprint, 1, length(b.prefix)) = b.prefix"
        " GROUP BY i.status, i.reason"
    ).fetchall()


def changed(db: sqlite3.Connection) -> list[Known]:
    """The staged rows that are new or whose fingerprint differs, in batch order."""
    out = []
    for r in db.execute(
        "SELECT b.n, i.id, i.fingerprint, i.status, i.reason,"
        " f.name, f.url, f.size, f.sha1, f.format, f.status"
        " FROM temp.fma_batch AS b"
        " LEFT JOIN items AS i ON i.source = 'fma' AND i.source_id = b.source_id"
        " LEFT JOIN files AS f ON f.id = (SELECT min(id) FROM files WHERE item_id = i.id)"
        " WHERE i.id IS NULL OR substr(i.fingerprint, 1, length(b.prefix)) IS NOT b.prefix"
        " ORDER BY b.n"
    ):
        stored = tuple(r)[5:10] if r[10] == "fetched" else None
        out.append(Known(r[0], r[1], r[2], r[3], r[4], stored))
    return out


def insert_new(
    db: sqlite3.Connection,
    rows: Sequence[tuple[tuple[Any, ...], tuple[Any, ...] | None]],
    now: str,
) -> None:
    """Insert new items, each with its file row or none.

    `rows`: (source_id, *ITEM_WRITE, fingerprint) and (name, size, est_size, sha1,
    format, url, status, reason, *RECORDING, duration). The caller holds the write
    transaction. Search index rows are made once per batch, from the views.
    """
    item_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM items").fetchone()[0]
    file_id = first_file = db.execute("SELECT coalesce(max(id), 0) + 1 FROM files").fetchone()[0]
    first_item = item_id
    items, files = [], []
    for item, file in rows:
        items.append((item_id, SOURCE, *item, now, now))
        if file is not None:
            files.append((file_id, item_id, *file))
            file_id += 1
        item_id += 1
    cols = ("id", "source", "source_id", *ITEM_WRITE, "fingerprint", "first_seen", "harvested_at")
    fcols = ("id", "item_id", "name", "size", "est_size", "sha1", "format", "url", "status")
    fcols += ("reason", *RECORDING, "duration")
    db.execute("INSERT OR REPLACE INTO bulk_load (id) VALUES (1)")
    db.executemany(
        f"INSERT INTO items ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", items
    )
    db.executemany(
        f"INSERT INTO files ({', '.join(fcols)}) VALUES ({', '.join('?' * len(fcols))})", files
    )
    db.execute(
        "INSERT INTO items_fts (rowid, title, creator, album, identifiers, recording)"
        " SELECT * FROM items_fts_rows WHERE item_id >= ?",
        (first_item,),
    )
    db.execute(
        "INSERT INTO files_fts (rowid, name, title, item_id)"
        " SELECT * FROM files_fts_rows WHERE file_id >= ?",
        (first_file,),
    )
    db.execute("DELETE FROM bulk_load")


def refresh(db: sqlite3.Connection, rows: Sequence[tuple[str, int]]) -> None:
    """(fingerprint, item id): only the fingerprint moves (the same plan, another row)."""
    db.executemany("UPDATE items SET fingerprint = ? WHERE id = ?", rows)


def update_item(
    db: sqlite3.Connection, item_id: int, values: Sequence[Any], fingerprint: str, now: str
) -> None:
    """Rewrite a changed item's harvest-owned columns (ITEM_WRITE order)."""
    sets = ", ".join(f"{c} = ?" for c in ITEM_WRITE)
    db.execute(
        f"UPDATE items SET {sets}, fingerprint = ?, harvested_at = ? WHERE id = ?",
        (*values, fingerprint, now, item_id),
    )


def set_recording(
    db: sqlite3.Connection, item_id: int, name: str, values: Sequence[Any], seconds: float | None
) -> None:
    """The file's per-recording columns (RECORDING order) and, when known, its duration."""
    row = db.execute(
        "SELECT id FROM files WHERE item_id = ? AND name = ?", (item_id, name)
    ).fetchone()
    if row is None:
        return
    db.execute(
        f"UPDATE files SET {', '.join(f'{c} = ?' for c in RECORDING)} WHERE id = ?",
        (*values, row[0]),
    )
    if seconds:
        db.execute("UPDATE files SET duration = ? WHERE id = ?", (seconds, row[0]))


def file_state(status: str, reason: str | None) -> tuple[str, str | None]:
    """A new or changed file's (status, reason) from its item's: waiting to be fetched
    when the item is ok, else refused with the item's reason."""
    return ("pending", None) if status == "ok" else ("refused", f"item {status}: {reason}")


def sync_file(
    db: sqlite3.Connection,
    item_id: int,
    audio: tuple[str, str, int | None, str | None, str | None] | None,
    est_size: int | None,
    status: str,
    reason: str | None,
) -> int:
    """Make a changed item's file row match the plan without losing fetched or packed
    bytes. `audio`: (name, url, size, sha1, format). Returns 1 when the file is new or
    changed and waits to be fetched, else 0."""
    name = audio[0] if audio else None
    # Rows for a file the dataset no longer names: drop them unless they hold bytes.
    db.execute(
        "DELETE FROM files WHERE item_id = ? AND name IS NOT ? AND status != 'fetched'"
        " AND id NOT IN (SELECT file_id FROM pack_files)",
        (item_id, name),
    )
    if audio is None:
        return 0
    name, url, size, sha1, fmt = audio
    want, why = file_state(status, reason)
    row = db.execute(
        "SELECT id, size, sha1, status FROM files WHERE item_id = ? AND name = ?",
        (item_id, name),
    ).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO files (item_id, name, size, est_size, sha1, format, origin, url,"
            " status, reason) VALUES (?, ?, ?, ?, ?, ?, 'original', ?, ?, ?)",
            (item_id, name, size, est_size, sha1, fmt, url, want, why),
        )
        return int(want == "pending")
    file_id, old_size, old_sha1, old_status = tuple(row)
    changed = (size is not None and size != old_size) or (sha1 is not None and sha1 != old_sha1)
    keep = (old_status == "fetched" and not changed) or status == "withdrawn"
    # A failed file keeps the fetcher's reason; it retries failed files.
    if keep or (old_status == "failed" and want == "pending" and not changed):
        db.execute(
            "UPDATE files SET url = ?, size = ?, est_size = ?, sha1 = ?, format = ? WHERE id = ?",
            (url, size or old_size, est_size, sha1, fmt, file_id),
        )
        return 0
    # New bytes, or a pending/refused row: fetch (and check) again from scratch.
    db.execute(
        "UPDATE files SET url = ?, size = ?, sha1 = ?, format = ?, status = ?, reason = ?,"
        " attempts = 0, fetched_at = NULL, verdict = NULL, verdict_reason = NULL,"
        " checked_at = NULL WHERE id = ?",
        (url, size, sha1, fmt, want, why, file_id),
    )
    return int(want == "pending")
