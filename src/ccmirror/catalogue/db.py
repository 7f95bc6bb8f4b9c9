"""SQLite connection, named migrations and short transactions.

WAL so readers (status, search, seed) never block a writer; a busy timeout so a second
writer waits instead of failing; migrations are files in `migrations/`, applied in name
order and recorded by name, so later releases add tables without breaking old mirrors.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from ccmirror.errors import CCMirrorError
from ccmirror.fsutil import ensure_data_dir

BUSY_TIMEOUT_MS = 30_000


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("ccmirror.catalogue") / "migrations"
    found = [(p.name.removesuffix(".sql"), p.read_text("utf-8")) for p in folder.iterdir()]
    return sorted((name, sql) for name, sql in found if not name.startswith("."))


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in _migrations():
        if name in done:
            continue
        # executescript commits first; the migration and its record go in one transaction.
        conn.executescript(
            "BEGIN IMMEDIATE;\n"
            + sql
            + f"\nINSERT INTO migrations(name, applied_at) VALUES ('{name}', '{utcnow()}');\nCOMMIT;"
        )
        applied.append(name)
    return applied


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and create or upgrade, unless read-only) the catalogue at `path`."""
    try:
        if readonly:
            # Quoted: a data dir whose path holds '?', '#' or '%' must not cut the URI short.
            uri = f"file:{urllib.parse.quote(str(Path(path).absolute()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            ensure_data_dir(path.parent)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # The pragmas above read nothing: make a file that is not SQLite fail here, once,
        # with its name, rather than at the first query with a bare "not a database".
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
    except sqlite3.DatabaseError as e:
        raise CCMirrorError(f"cannot open catalogue {path}: {e}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction; BEGIN IMMEDIATE takes the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
