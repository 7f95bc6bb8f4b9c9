"""Secondary indexes of `items` and `files` built once after a bulk load, not row by row.

A first load of a big source writes rows in an order the popularity and status indexes
do not share: each row is a random B-tree insert into each of them (most of the write
cost at 10M rows, where they outgrow the page cache), where CREATE INDEX afterwards is
one sort. So `defer` drops every secondary index of the two tables (never the UNIQUE
ones: they keep guarding the rows), recording each one's CREATE statement in
`deferred_indexes` in the same transaction, and `restore` builds what is recorded and
forgets it, again in one transaction.

While rows are recorded the catalogue is incomplete: readers name these indexes
(INDEXED BY). The loading process holds an exclusive flock on `<catalogue>-load` from
before the drop until after the restore; `connect()` (db.py) calls `check` on every
open: rows recorded and the lock free means a load was killed, so the indexes are built
there and then; the lock held means a load is running, and the open fails (LockHeld)
rather than read a catalogue without its indexes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from ccmirror.errors import LockHeld

TABLES = ("items", "files")
MEMORY = 2  # PRAGMA temp_store


def lock_path(db: sqlite3.Connection) -> Path:
    """`<catalogue file>-load`, beside the catalogue (the file of the `main` schema)."""
    row = db.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()
    return Path(f"{row[0]}-load")


def take_lock(path: Path) -> int | None:
    """An fd holding the exclusive flock on `path`, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the only fd drops the flock


def pending(db: sqlite3.Connection) -> int:
    """How many indexes are recorded as deferred (0 before migration 0075)."""
    try:
        return int(db.execute("SELECT count(*) FROM deferred_indexes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def defer(db: sqlite3.Connection) -> int:
    """Drop the secondary indexes of items and files, recorded; the caller holds the
    load lock. Returns how many were dropped."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(TABLES))})"
            " AND name NOT IN (SELECT name FROM deferred_indexes) ORDER BY name",
            TABLES,
        ).fetchall()
        for name, sql in found:
            db.execute("INSERT INTO deferred_indexes (name, sql) VALUES (?, ?)", (name, sql))
            db.execute(f'DROP INDEX "{name}"')
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return len(found)


def restore(db: sqlite3.Connection) -> int:
    """Build every recorded index that does not exist and forget the records, in one
    transaction. Returns how many were built.

    The sorts go to temporary files, never memory (a harvest's bulk session keeps temp
    in memory): at 10M rows one index's sort is hundreds of MiB. Switching temp_store
    drops this connection's TEMP tables; none outlives a batch of the load."""
    temp = db.execute("PRAGMA temp_store").fetchone()[0]
    if temp == MEMORY:
        db.execute("PRAGMA temp_store = FILE")
    try:
        return _build(db)
    finally:
        if temp == MEMORY:
            db.execute("PRAGMA temp_store = MEMORY")


def _build(db: sqlite3.Connection) -> int:
    db.execute("BEGIN IMMEDIATE")
    built = 0
    try:
        for name, sql in db.execute("SELECT name, sql FROM deferred_indexes").fetchall():
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
            ).fetchone()
            if exists is None:
                db.execute(sql)
                built += 1
        db.execute("DELETE FROM deferred_indexes")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return built


def check(db: sqlite3.Connection, *, readonly: bool) -> bool:
    """Called by connect(): False when nothing is deferred or the indexes were built
    here; True when they need a writable connection (a read-only one, a killed load).
    Raises LockHeld while a load is running."""
    if not pending(db):
        return False
    fd = take_lock(lock_path(db))
    if fd is None:
        raise LockHeld(
            "a first harvest is loading the catalogue (its indexes are built when it"
            " ends); try again then"
        )
    try:
        if readonly:
            return True
        restore(db)
        return False
    finally:
        release(fd)
