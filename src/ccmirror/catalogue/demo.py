"""What `ccmirror demo` reports of the catalogue: its packs, each sample item's outcome."""

from __future__ import annotations

import sqlite3

__all__ = ["live_packs", "packed_names", "sample_files", "sample_item"]


def live_packs(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """The live content packs, by tier and sequence."""
    return db.execute(
        "SELECT name, tier, status, num_files, data_size, info_hash_v1, torrent_path"
        " FROM packs WHERE obsolete = 0 AND is_metadata = 0 ORDER BY tier, seq"
    ).fetchall()


def sample_item(db: sqlite3.Connection, identifier: str) -> sqlite3.Row | None:
    """The IA item (id, status, reason) of a sample identifier."""
    return db.execute(
        "SELECT id, status, reason FROM items WHERE source = 'ia' AND source_id = ?",
        (identifier,),
    ).fetchone()


def sample_files(db: sqlite3.Connection, item_id: int) -> list[sqlite3.Row]:
    """An item's files (name, status, reason, verdict), by name."""
    return db.execute(
        "SELECT name, status, reason, verdict FROM files WHERE item_id = ? ORDER BY name",
        (item_id,),
    ).fetchall()


def packed_names(db: sqlite3.Connection, item_id: int) -> set[str]:
    """Names of an item's files in a live pack."""
    return {
        r[0]
        for r in db.execute(
            "SELECT f.name FROM files f JOIN pack_files pf ON pf.file_id = f.id"
            " JOIN packs p ON p.id = pf.pack_id WHERE f.item_id = ? AND p.obsolete = 0",
            (item_id,),
        )
    }
