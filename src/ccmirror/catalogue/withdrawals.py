"""Takedowns in the catalogue: finding the item, the withdrawals recorded, and what a
purge removes. (The state change itself is `states.item_withdrawn`.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = [
    "file_pack_paths",
    "items_named",
    "withdrawals",
    "withdrawn_files",
    "withdrawn_left_store",
]


def items_named(db: sqlite3.Connection, source: str | None, source_id: str) -> list[sqlite3.Row]:
    """Items with this source id (of this source kind, when given)."""
    if source is not None:
        return db.execute(
            "SELECT * FROM items WHERE source = ? AND source_id = ?", (source, source_id)
        ).fetchall()
    return db.execute("SELECT * FROM items WHERE source_id = ?", (source_id,)).fetchall()


def withdrawals(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every withdrawal, oldest first."""
    return db.execute("SELECT * FROM withdrawals ORDER BY withdrawn_at, id").fetchall()


def withdrawn_files(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(id, item_id, store_path) of every file of a withdrawn item."""
    return db.execute(
        "SELECT f.id, f.item_id, f.store_path FROM files AS f JOIN items AS i ON i.id = f.item_id"
        " WHERE i.status = 'withdrawn'"
    ).fetchall()


def file_pack_paths(db: sqlite3.Connection, file_id: int) -> list[sqlite3.Row]:
    """(name, path) of every pack holding the file, sealed or open."""
    return db.execute(
        "SELECT p.name, pf.path FROM pack_files AS pf JOIN packs AS p ON p.id = pf.pack_id"
        " WHERE pf.file_id = ?",
        (file_id,),
    ).fetchall()


def withdrawn_left_store(db: sqlite3.Connection, removed: Iterable[tuple[int, int]]) -> None:
    """Withdrawn items' files are out of the store; (item id, copies removed) is added to
    each withdrawal's count."""
    db.execute(
        "UPDATE files SET store_path = NULL WHERE store_path IS NOT NULL AND item_id IN"
        " (SELECT id FROM items WHERE status = 'withdrawn')"
    )
    db.executemany(
        "UPDATE withdrawals SET files_removed = files_removed + ? WHERE item_id = ?",
        [(n, item_id) for item_id, n in removed],
    )
