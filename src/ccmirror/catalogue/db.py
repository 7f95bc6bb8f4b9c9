"""SQLite connection, named migrations and short transactions.

WAL so readers (status, search, seed) never block a writer; a busy timeout so a second
writer waits instead of failing; migrations are files in `migrations/`, applied in name
order and recorded by name, so later releases add tables without breaking old mirrors.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from ccmirror.errors import CCMirrorError
from ccmirror.fsutil import ensure_data_dir
from ccmirror.sources.registry import kind_names

BUSY_TIMEOUT_MS = 30_000


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("ccmirror.catalogue") / "migrations"
    found = [(p.name.removesuffix(".sql"), p.read_text("utf-8")) for p in folder.iterdir()]
    return sorted((name, sql) for name, sql in found if not name.startswith("."))


def pending_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this catalogue has not recorded yet."""
    try:
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:  # no migrations table: a new or foreign database
        done = set()
    return [name for name, _ in _migrations() if name not in done]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    todo = set(pending_migrations(conn))
    applied = []
    for name, sql in _migrations():
        if name not in todo:
            continue
        # executescript commits first; the migration and its record go in one transaction.
        try:
            conn.executescript(
                "BEGIN IMMEDIATE;\n"
                + sql
                + f"\nINSERT INTO migrations(name, applied_at) VALUES ('{name}', '{utcnow()}');"
                "\nCOMMIT;"
            )
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if name in pending_migrations(conn):
                raise
            continue  # another process (a read-only command upgrading) applied it first
        applied.append(name)
    return applied


def schema_source_kinds(conn: sqlite3.Connection) -> tuple[str, ...] | None:
    """The source kinds `items.source`'s CHECK allows; None without a CHECK on it."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'")
    sql = (row.fetchone() or [""])[0] or ""
    m = re.search(r"\bsource\s+TEXT\b[^,]*?CHECK\s*\(\s*source\s+IN\s*\(([^)]*)\)", sql, re.I)
    return tuple(re.findall(r"'([^']*)'", m.group(1))) if m else None


def _check_source_kinds(conn: sqlite3.Connection, path: Path) -> None:
    """Every registered source kind fits in `items.source`: a kind added to the registry
    without the migration widening the CHECK fails here, not at its first harvest."""
    allowed = schema_source_kinds(conn)
    missing = [k for k in kind_names() if allowed is not None and k not in allowed]
    if missing:
        conn.close()
        raise CCMirrorError(
            f"catalogue {path} cannot hold items of source kind {', '.join(missing)}:"
            f" items.source allows only {', '.join(allowed or ())} (a migration must widen it)"
        )


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
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "migrations" not in tables:
            conn.close()
            raise CCMirrorError(
                f"{path} is an SQLite database but not a ccmirror catalogue; move it away"
                " or use another data directory"
            )
        if readonly and pending_migrations(conn):
            # A catalogue from an older ccmirror: upgrade it once, then read.
            conn.close()
            connect(path).close()
            return connect(path, readonly=True)
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
        _check_source_kinds(conn, path)
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
