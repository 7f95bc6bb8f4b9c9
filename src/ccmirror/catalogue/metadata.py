"""The metadata dump's reads and its torrent's rows: each table rendered as JSON lines by
SQLite itself (sorted rows and keys, bookkeeping columns left out), and the `packs` rows of
metadata torrents (is_metadata = 1). `ccmirror.publish.metadata` decides; the SQL is here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

__all__ = [
    "catalogue_empty",
    "current_metadata",
    "dump_lines",
    "metadata_sealed",
    "next_metadata_seq",
    "obsolete_metadata_names",
    "pack_named",
]

# Table, ORDER BY, columns left out (they change without the catalogue's content changing).
TABLES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("items", "id", frozenset({"harvested_at"})),
    ("files", "id", frozenset({"attempts"})),
    ("packs", "id", frozenset()),
    ("pack_files", "pack_id, file_id", frozenset()),
    ("withdrawals", "id", frozenset()),
)
JSON_COLUMNS = {
    ("items", "collections"),
    ("items", "extra"),
    ("files", "evidence"),
    ("files", "artists"),  # JSON lists (0030); a genre list kept as text stays a string
    ("files", "genres"),
}


def line_sql(db: sqlite3.Connection, table: str, order: str, skip: frozenset[str]) -> str:
    """One SELECT that renders each row as its JSON line in SQLite (C speed, sorted keys)."""
    columns = sorted(r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] not in skip)
    parts = []
    for col in columns:
        value = f'"{col}"'
        if (table, col) in JSON_COLUMNS:
            # Embedded as JSON; a damaged value stays the string the catalogue holds.
            value = f'CASE WHEN json_valid("{col}") THEN json("{col}") ELSE "{col}" END'
        parts.append(f"'{col}', {value}")
    where = " WHERE is_metadata = 0" if table == "packs" else ""
    return (
        f"SELECT json_object('row', json_object({', '.join(parts)}), 'table', '{table}')"
        f" FROM {table}{where} ORDER BY {order}"
    )


def dump_lines(db: sqlite3.Connection) -> Iterator[str]:
    """Every dumped table's rows as JSON lines (without the newline), streamed."""
    for table, order, skip in TABLES:
        for (line,) in db.execute(line_sql(db, table, order, skip)):
            yield line


def current_metadata(db: sqlite3.Connection) -> sqlite3.Row | None:
    """The live metadata torrent's row (the newest), if any."""
    return db.execute(
        "SELECT * FROM packs WHERE is_metadata = 1 AND obsolete = 0 ORDER BY seq DESC LIMIT 1"
    ).fetchone()


def catalogue_empty(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None


def next_metadata_seq(db: sqlite3.Connection) -> int:
    return int(
        db.execute("SELECT coalesce(max(seq), 0) FROM packs WHERE is_metadata = 1").fetchone()[0]
        + 1
    )


def metadata_sealed(db: sqlite3.Connection, row: dict[str, Any], inputs: dict[str, Any]) -> None:
    """Record a new metadata torrent (call inside a transaction): its sealed row, every
    input of its torrent (a lost .torrent is rebuilt byte for byte), and the older ones
    obsolete."""
    cols = ", ".join(row)
    db.execute(
        f"INSERT INTO packs ({cols}, tier, status, is_metadata, popularity)"
        f" VALUES ({', '.join('?' * len(row))}, 0, 'sealed', 1, 0)",
        list(row.values()),
    )
    sets = ", ".join(f"{k} = ?" for k in inputs)
    db.execute(f"UPDATE packs SET {sets} WHERE name = ?", [*inputs.values(), row["name"]])
    db.execute(
        "UPDATE packs SET obsolete = 1, obsolete_reason = ?"
        " WHERE is_metadata = 1 AND obsolete = 0 AND name != ?",
        (f"superseded by {row['name']}", row["name"]),
    )


def pack_named(db: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM packs WHERE name = ?", (name,)).fetchone()


def obsolete_metadata_names(db: sqlite3.Connection) -> list[str]:
    return [
        r[0] for r in db.execute("SELECT name FROM packs WHERE is_metadata = 1 AND obsolete = 1")
    ]
