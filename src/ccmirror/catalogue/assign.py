"""Pack assignment in the catalogue: the files waiting for a pack, the open pack of a tier,
and a plan's places kept in TEMP tables (`temp.assign_entries`, `temp.assign_items`)
instead of a Python list of every file, written into `pack_files` set-based.

`ccmirror.packs.assign` decides which pack each file goes to; the SQL is here. A plan's
tables belong to its connection (TEMP: writable on a read-only catalogue too, so a dry run
plans the same way); each plan starts them afresh.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ccmirror.catalogue.db import utcnow
from ccmirror.catalogue.tiers import Ranking

__all__ = [
    "assigned",
    "candidates",
    "entries_added",
    "items_added",
    "next_seq",
    "open_pack_of_tier",
    "pack_bytes",
    "plan_tables",
    "planned_entries",
    "ranks_of",
    "waiting_tiers",
]


def candidates(
    db: sqlite3.Connection, rk: Ranking, allowed: Sequence[str], artwork: bool
) -> Iterator[sqlite3.Row]:
    """Publishable unpacked files in the store with their item's tier and share, in the
    order packs are filled: by tier, most listened item first (ties by id), files by
    name. Streamed: the sort is SQLite's, not a list of every ranked item."""
    marks = ",".join("?" * len(allowed))
    tier, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    yield from db.execute(
        "SELECT f.id, f.item_id, f.name, f.size, f.store_path, f.copy_of, f.compact,"
        f" i.source, i.source_id, {tier} AS tier, {share} AS share"
        " FROM files f JOIN items i ON i.id = f.item_id"
        f" WHERE f.status = 'fetched' AND i.status = 'ok' AND f.verdict IN ({marks})"
        " AND f.store_path IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pack_files pf"
        " JOIN packs p ON p.id = pf.pack_id WHERE pf.file_id = f.id AND p.obsolete = 0)"
        # Cover images fetched before [torrents] artwork was turned off stay out.
        " AND (f.kind = 'audio' OR ?) ORDER BY tier, share DESC, f.item_id, f.name",
        [*tp, *sp, *allowed, artwork],
    )


def ranks_of(
    db: sqlite3.Connection, rk: Ranking, item_ids: Iterable[int]
) -> dict[int, tuple[int, float]]:
    """Item id -> (tier, share) of those of `item_ids` that are 'ok'."""
    tier, tp = rk.tier_sql()
    share, sp = rk.share_sql()
    return {
        r[0]: (r[1], r[2])
        for r in db.execute(
            f"SELECT i.id, {tier}, {share} FROM items AS i WHERE i.status = 'ok'"
            " AND i.id IN (SELECT value FROM json_each(?))",
            [*tp, *sp, json.dumps(sorted(set(item_ids)))],
        )
    }


def open_pack_of_tier(db: sqlite3.Connection, tier: int) -> sqlite3.Row | None:
    """The newest open content pack of the tier (id, seq, name), if any."""
    return db.execute(
        "SELECT id, seq, name FROM packs WHERE tier = ? AND status = 'open' AND is_metadata = 0"
        " AND obsolete = 0 ORDER BY seq DESC LIMIT 1",
        (tier,),
    ).fetchone()


def next_seq(db: sqlite3.Connection, tier: int) -> int:
    """The sequence number of the tier's next content pack."""
    return int(
        db.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM packs WHERE tier = ? AND is_metadata = 0",
            (tier,),
        ).fetchone()[0]
    )


def pack_bytes(db: sqlite3.Connection, pack_id: int) -> int:
    """Bytes of the files in a pack."""
    return int(
        db.execute(
            "SELECT coalesce(sum(f.size), 0) FROM pack_files pf JOIN files f"
            " ON f.id = pf.file_id WHERE pf.pack_id = ?",
            (pack_id,),
        ).fetchone()[0]
    )


def plan_tables(db: sqlite3.Connection) -> None:
    """Empty TEMP tables for a new plan's places: entries (slot, file, path, size, in
    plan order) and items (item id -> tier)."""
    db.execute("DROP TABLE IF EXISTS temp.assign_entries")
    db.execute("DROP TABLE IF EXISTS temp.assign_items")
    db.execute(
        "CREATE TEMP TABLE assign_entries (n INTEGER PRIMARY KEY, slot INTEGER NOT NULL,"
        " file_id INTEGER NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL)"
    )
    db.execute("CREATE TEMP TABLE assign_items (item_id INTEGER PRIMARY KEY, tier INTEGER)")


def entries_added(db: sqlite3.Connection, entries: Iterable[tuple[int, int, str, int]]) -> None:
    """(slot, file id, path, size) places, appended in plan order."""
    db.executemany(
        "INSERT INTO temp.assign_entries (slot, file_id, path, size) VALUES (?, ?, ?, ?)",
        entries,
    )


def items_added(db: sqlite3.Connection, items: Iterable[tuple[int, int]]) -> None:
    """(item id, tier) of the items placed; the first place of an item stands."""
    db.executemany("INSERT OR IGNORE INTO temp.assign_items (item_id, tier) VALUES (?, ?)", items)


def planned_entries(db: sqlite3.Connection) -> Iterator[tuple[int, int, str, int]]:
    """The plan's (slot, file id, path, size), in plan order, read in pages."""
    last = 0
    while page := db.execute(
        "SELECT n, slot, file_id, path, size FROM temp.assign_entries WHERE n > ?"
        " ORDER BY n LIMIT 1000",
        (last,),
    ).fetchall():
        last = page[-1][0]
        for _, slot, file_id, path, size in page:
            yield slot, file_id, path, size


def assigned(
    db: sqlite3.Connection, slots: Sequence[tuple[int, int | None, str, int, int]]
) -> None:
    """Record the plan (call inside a transaction): a new pack for each of `slots` (those
    that get files: (slot, pack id or None, name, tier, seq) each) without one, the plan's
    entries as pack_files rows in plan order, sizes the catalogue lacked, the items'
    tiers."""
    db.execute("DROP TABLE IF EXISTS temp.assign_slots")
    db.execute("CREATE TEMP TABLE assign_slots (slot INTEGER PRIMARY KEY, pack_id INTEGER)")
    for slot, pack_id, name, tier, seq in slots:
        if pack_id is None:
            pack_id = db.execute(
                "INSERT INTO packs (name, tier, seq, status, created_at)"
                " VALUES (?, ?, ?, 'open', ?)",
                (name, tier, seq, utcnow()),
            ).lastrowid
        if pack_id is not None:
            db.execute("INSERT INTO temp.assign_slots VALUES (?, ?)", (slot, pack_id))
    db.execute(
        "INSERT INTO pack_files (pack_id, file_id, path) SELECT s.pack_id, e.file_id, e.path"
        " FROM temp.assign_entries e JOIN temp.assign_slots s ON s.slot = e.slot ORDER BY e.n"
    )
    db.execute(
        "UPDATE files SET size = e.size FROM temp.assign_entries AS e"
        " WHERE e.file_id = files.id AND files.size IS NULL"
    )
    db.execute(
        "UPDATE items SET tier = a.tier FROM temp.assign_items AS a"
        " WHERE a.item_id = items.id AND items.tier IS NULL"
    )
    db.execute("DROP TABLE temp.assign_slots")


def waiting_tiers(
    db: sqlite3.Connection,
    rk: Ranking,
    held: str | None = None,
    held_params: Sequence[Any] = (),
    taken: Iterable[int] = (),
) -> set[int]:
    """Tiers of the ok items with a file still waiting for fetch or check (derivatives
    aside), in SQL. `held`: an SQL condition on `i.id` (a budget's selection) the items
    must meet. `taken`: file ids not counted as waiting (a dry run's files that its fetch
    brings); with them only pending files wait (as a dry run counts)."""
    tier, tp = rk.tier_sql()
    cond = f" AND ({held})" if held else ""
    if taken != ():
        db.execute("DROP TABLE IF EXISTS temp.assign_taken")
        db.execute("CREATE TEMP TABLE assign_taken (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO temp.assign_taken VALUES (?)", ((i,) for i in taken))
        waiting = "f.status = 'pending' AND f.id NOT IN (SELECT id FROM temp.assign_taken)"
    else:
        waiting = (
            "f.compact IS NOT 'derivative' AND (f.status = 'pending'"
            " OR (f.status = 'fetched' AND f.verdict IS NULL))"
        )
    try:
        return {
            r[0]
            for r in db.execute(
                f"SELECT DISTINCT {tier} FROM items AS i WHERE i.status = 'ok'{cond}"
                f" AND i.id IN (SELECT f.item_id FROM files AS f WHERE {waiting})",
                [*tp, *held_params],
            )
        }
    finally:
        db.execute("DROP TABLE IF EXISTS temp.assign_taken")
