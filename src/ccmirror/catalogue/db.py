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
from pathlib import Path
from typing import Any

from ccmirror.catalogue import deferred
from ccmirror.errors import CCMirrorError
from ccmirror.fsutil import ensure_data_dir
from ccmirror.sources.registry import kind_names

BUSY_TIMEOUT_MS = 30_000


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _folder() -> Any:
    """The migrations folder: a directory beside this module (no importlib.resources, whose
    imports cost every command's start-up), or the package's resource when installed
    without one (a zip)."""
    here = Path(__file__).with_name("migrations")
    if here.is_dir():
        return here
    from importlib import resources

    return resources.files("ccmirror.catalogue") / "migrations"


def _migrations() -> list[tuple[str, str]]:
    found = [(p.name.removesuffix(".sql"), p.read_text("utf-8")) for p in _folder().iterdir()]
    return sorted((name, sql) for name, sql in found if not name.startswith("."))


def pending_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this catalogue has not recorded yet."""
    try:
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:  # no migrations table: a new or foreign database
        done = set()
    return [name for name, _ in _migrations() if name not in done]


# A migration holding this line edits sqlite_master itself (SQLite's documented procedure
# for changes that leave the on-disk format alone, such as dropping a CHECK): it runs with
# writable_schema on, then schema_version is bumped so every connection re-reads the
# schema, and PRAGMA quick_check must say ok before it commits: the rows and b-trees
# against the edited schema (its CHECK and NOT NULL constraints too). Not integrity_check:
# an edit leaves the indexes as they were, and matching them to the table took 23 s of
# the 28 s a 1M-item upgrade cost, where quick_check takes 5.
SCHEMA_EDIT = "-- ccmirror: schema-edit"


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
        try:
            _apply(conn, name, sql)
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if name in pending_migrations(conn):
                raise
            continue  # another process (a read-only command upgrading) applied it first
        applied.append(name)
    return applied


def _apply(conn: sqlite3.Connection, name: str, sql: str) -> None:
    """One migration and its record, in one transaction (executescript commits first)."""
    record = f"INSERT INTO migrations(name, applied_at) VALUES ('{name}', '{utcnow()}');"
    if SCHEMA_EDIT not in sql.splitlines():
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n{record}\nCOMMIT;")
        return
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\nPRAGMA writable_schema = ON;\n{sql}\n{record}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        conn.execute("ROLLBACK")
        raise CCMirrorError(f"migration {name} left the catalogue inconsistent: {problems[:5]}")
    conn.execute("COMMIT")


def register_source_kinds(conn: sqlite3.Connection) -> None:
    """Add the registry's kinds the catalogue does not know yet, so items of a kind added
    to sources/registry.py need no migration; the triggers of 0046 refuse any other kind.
    Kinds are never removed: items of a kind an older ccmirror lacks stay valid."""
    try:
        known = {row[0] for row in conn.execute("SELECT kind FROM source_kinds")}
    except sqlite3.OperationalError:  # before 0046 (tests building an older catalogue)
        return
    new = [(k,) for k in kind_names() if k not in known]
    if new:
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO source_kinds (kind) VALUES (?)", new)


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
            register_source_kinds(conn)
        try:
            rebuild = deferred.check(conn, readonly=readonly)
        except CCMirrorError:
            conn.close()
            raise
        if rebuild:
            # A killed bulk load left indexes unbuilt: build them once, then read.
            conn.close()
            connect(path).close()
            return connect(path, readonly=True)
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
