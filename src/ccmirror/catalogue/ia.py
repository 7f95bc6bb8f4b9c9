"""The IA harvester's catalogue reads and writes: items upserted (a takedown outlives any
change at the source), files recorded, refused or changed at the source, popularity.
`ccmirror.sources.ia.records` turns IA's answers into the values these take."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "clash_refused",
    "fetched_names",
    "file_by_name",
    "file_changed_at_source",
    "file_inserted",
    "file_skipped",
    "file_titled",
    "ia_items_known",
    "ia_popularity",
    "item_file_ids",
    "item_repointed",
    "item_state",
    "item_upserted",
]

_FILE_COLUMNS = "item_id, name, size, md5, sha1, format, origin, url, status, reason, title"


def ia_items_known(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """What the catalogue holds of every IA item, for the harvest's decisions."""
    return db.execute(
        "SELECT id, source_id, source_updated, status, reason, licence_url, source_url"
        " FROM items WHERE source = 'ia'"
    ).fetchall()


def item_upserted(db: sqlite3.Connection, ident: str, row: Sequence[Any], now: str) -> int:
    """Insert or update IA item `ident`; `row` is (title, creator, date, collections,
    source_url, licence_url, declared_licence_id, downloads, downloads_month,
    downloads_week, popularity, extra, source_updated, status, reason, harvested_at). A
    withdrawn item stays withdrawn, with its reason. Returns its id."""
    return db.execute(
        """INSERT INTO items (source, source_id, title, creator, date, collections, source_url,
               licence_url, declared_licence_id, downloads, downloads_month, downloads_week,
               popularity, extra, source_updated, status, reason, harvested_at, first_seen)
           VALUES ('ia', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (source, source_id) DO UPDATE SET
               title = excluded.title, creator = excluded.creator, date = excluded.date,
               collections = excluded.collections, source_url = excluded.source_url,
               licence_url = excluded.licence_url,
               declared_licence_id = excluded.declared_licence_id,
               downloads = excluded.downloads, downloads_month = excluded.downloads_month,
               downloads_week = excluded.downloads_week, popularity = excluded.popularity,
               extra = excluded.extra, source_updated = excluded.source_updated,
               status = CASE WHEN items.status = 'withdrawn' THEN 'withdrawn'
                             ELSE excluded.status END,
               reason = CASE WHEN items.status = 'withdrawn' THEN items.reason
                             ELSE excluded.reason END,
               harvested_at = excluded.harvested_at
           RETURNING id""",
        (ident, *row, now),
    ).fetchone()[0]


def item_repointed(
    db: sqlite3.Connection, item_id: int, item_url: str, file_url: Callable[[str], str]
) -> None:
    """The item's page is `item_url`, each file's download `file_url(name)`."""
    db.execute("UPDATE items SET source_url = ? WHERE id = ?", (item_url, item_id))
    rows = db.execute("SELECT id, name FROM files WHERE item_id = ?", (item_id,)).fetchall()
    db.executemany(
        "UPDATE files SET url = ? WHERE id = ?", [(file_url(r["name"]), r["id"]) for r in rows]
    )


def ia_popularity(
    db: sqlite3.Connection, ident: str, downloads: int, month: int, week: int, popularity: float
) -> None:
    db.execute(
        """UPDATE items SET downloads = ?, downloads_month = ?, downloads_week = ?,
               popularity = ? WHERE source = 'ia' AND source_id = ?""",
        (downloads, month, week, popularity, ident),
    )


def item_state(db: sqlite3.Connection, item_id: int) -> sqlite3.Row | None:
    """(status, reason) of an item."""
    return db.execute("SELECT status, reason FROM items WHERE id = ?", (item_id,)).fetchone()


def item_file_ids(db: sqlite3.Connection, item_id: int) -> dict[str, int]:
    """Name -> id of the item's files."""
    return {
        r["name"]: r["id"]
        for r in db.execute("SELECT id, name FROM files WHERE item_id = ?", (item_id,))
    }


def fetched_names(db: sqlite3.Connection, item_id: int) -> list[str]:
    """Names of the item's files that are in the store."""
    return [
        r[0]
        for r in db.execute(
            "SELECT name FROM files WHERE item_id = ? AND status = 'fetched'", (item_id,)
        )
    ]


def file_by_name(db: sqlite3.Connection, item_id: int, name: str) -> sqlite3.Row | None:
    return db.execute(
        "SELECT id, size, md5, sha1, status FROM files WHERE item_id = ? AND name = ?",
        (item_id, name),
    ).fetchone()


def file_inserted(db: sqlite3.Connection, values: Sequence[Any], kind: str = "audio") -> None:
    """A new file row: (item_id, name, size, md5, sha1, format, origin, url, status,
    reason, title); `kind`: 'audio', or 'artwork' (the item's cover images, 0040)."""
    db.execute(
        f"INSERT INTO files ({_FILE_COLUMNS}, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*values, kind),
    )


def file_titled(db: sqlite3.Connection, file_id: int, title: str | None) -> None:
    db.execute(
        "UPDATE files SET title = ? WHERE id = ? AND title IS NOT ?", (title, file_id, title)
    )


def file_changed_at_source(db: sqlite3.Connection, file_id: int, changed: Sequence[Any]) -> None:
    """New bytes at the source: (size, md5, sha1, format, url, status, reason); fetched
    again (the verified old copy stays until replaced)."""
    db.execute(
        """UPDATE files SET size = ?, md5 = ?, sha1 = ?, sha256 = NULL, format = ?, url = ?,
               status = ?, reason = ? WHERE id = ?""",
        (*changed, file_id),
    )


def file_skipped(db: sqlite3.Connection, values: Sequence[Any]) -> int:
    """A file not fetched, refused with why: (item_id, name, size, md5, sha1, format,
    origin, url, reason, title). A copy already fetched keeps its row. Returns 1 when the
    row is new or its reason changed."""
    cur = db.execute(
        f"""INSERT INTO files ({_FILE_COLUMNS})
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'refused', ?, ?)
           ON CONFLICT (item_id, name) DO UPDATE SET status = 'refused', reason = excluded.reason,
               format = excluded.format, url = excluded.url
           WHERE files.status IN ('pending', 'failed', 'refused')
             AND files.reason IS NOT excluded.reason""",
        tuple(values),
    )
    return cur.rowcount


def clash_refused(db: sqlite3.Connection, item_id: int, name: str, why: str) -> None:
    """A file whose name clashes with another's is refused, unless it is in the store."""
    db.execute(
        "UPDATE files SET status = 'refused', reason = ? WHERE item_id = ? AND name = ?"
        " AND status IN ('pending', 'failed')",
        (why, item_id, name),
    )
