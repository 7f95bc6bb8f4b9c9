"""Migration 0046 drops 0001's CHECK on items.source by editing sqlite_master (no table
rebuild): an existing catalogue upgrades in place, keeps every row and page, and other
connections see the new schema; db.migrate's schema-edit support checks what it did."""

from __future__ import annotations

import sqlite3

import pytest

from ccmirror.catalogue import db
from ccmirror.catalogue.db import SCHEMA_EDIT, connect
from ccmirror.errors import CCMirrorError
from ccmirror.sources import registry
from ccmirror.sources.registry import SourceKind

EDIT = "0046_source_kinds"


def _old_catalogue(path, monkeypatch, items=50):
    """A catalogue as every migration but 0046 leaves it, with items and files in it."""
    real = db._migrations
    monkeypatch.setattr(db, "_migrations", lambda: [m for m in real() if m[0] != EDIT])
    conn = connect(path)
    for i in range(items):
        cur = conn.execute(
            "INSERT INTO items (source, source_id, title, popularity, first_seen, harvested_at)"
            " VALUES (?, ?, ?, ?, 'n', 'n')",
            ("ia" if i % 2 else "fma", f"id{i}", f"title {i}", i),
        )
        conn.execute(
            "INSERT INTO files (item_id, name, size) VALUES (?, 'a.mp3', ?)", (cur.lastrowid, i)
        )
    monkeypatch.setattr(db, "_migrations", real)
    return conn


def _rows(conn):
    return [tuple(r) for r in conn.execute("SELECT * FROM items ORDER BY id")] + [
        tuple(r) for r in conn.execute("SELECT * FROM files ORDER BY id")
    ]


def _pages(conn):
    """Where each b-tree of items starts: unchanged if no row or index entry was moved."""
    sql = "SELECT name, rootpage FROM sqlite_master WHERE tbl_name IN ('items', 'files')"
    return {r[0]: r[1] for r in conn.execute(sql) if r[1]}


def _items_sql(conn):
    return conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()[0]


def _insert(conn, source, source_id):
    conn.execute(
        "INSERT INTO items (source, source_id, first_seen, harvested_at) VALUES (?, ?, 'n', 'n')",
        (source, source_id),
    )


def test_an_old_catalogue_upgrades_in_place_keeping_every_row(tmp_path, monkeypatch):
    path = tmp_path / "catalogue.sqlite"
    old = _old_catalogue(path, monkeypatch)
    assert "CHECK (source IN ('ia', 'fma'))" in _items_sql(old)
    rows, pages = _rows(old), _pages(old)
    version = old.execute("PRAGMA schema_version").fetchone()[0]
    old.close()
    conn = connect(path)
    assert db.pending_migrations(conn) == []
    assert "CHECK (source IN" not in _items_sql(conn) and "CHECK (status IN" in _items_sql(conn)
    assert _rows(conn) == rows
    assert _pages(conn) == pages  # no table or index was rewritten
    assert conn.execute("PRAGMA schema_version").fetchone()[0] > version
    assert [tuple(r) for r in conn.execute("PRAGMA integrity_check")] == [("ok",)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # Foreign keys still hold: deleting an item takes its file with it.
    conn.execute("DELETE FROM items WHERE source_id = 'id0'")
    assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == len(rows) // 2 - 1
    with pytest.raises(sqlite3.IntegrityError):
        _insert(conn, "ftp", "x")


def test_a_connection_open_during_the_upgrade_reads_the_new_schema(tmp_path, monkeypatch):
    # A seeder holding a connection (its schema read) while a harvest upgrades the catalogue
    # and registers a new kind: its next statement sees the schema without the CHECK.
    path = tmp_path / "catalogue.sqlite"
    _old_catalogue(path, monkeypatch).close()
    seeder = sqlite3.connect(path, isolation_level=None)
    seeder.execute("PRAGMA foreign_keys = ON")
    assert seeder.execute("SELECT count(*) FROM items").fetchone()[0] == 50
    with pytest.raises(sqlite3.IntegrityError):  # the old schema's CHECK
        _insert(seeder, "toy", "before")
    toy = SourceKind("toy", "ccmirror.manifest.sources:parse_ia", "ccmirror.sources.ia:x")
    monkeypatch.setitem(registry.SOURCE_KINDS, "toy", toy)
    connect(path).close()
    _insert(seeder, "toy", "after")
    with pytest.raises(sqlite3.IntegrityError, match="not a registered source kind"):
        _insert(seeder, "ftp", "after")
    assert seeder.execute("SELECT count(*) FROM items").fetchone()[0] == 51


def _with_migration(monkeypatch, name, sql):
    real = db._migrations
    monkeypatch.setattr(db, "_migrations", lambda: [*real(), (name, sql)])


def test_a_schema_edit_migration_runs_with_writable_schema_and_bumps_the_version(
    tmp_path, monkeypatch
):
    path = tmp_path / "catalogue.sqlite"
    conn = connect(path)
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.close()
    edit = (
        f"{SCHEMA_EDIT}\nUPDATE sqlite_master SET sql = replace(sql, 'title TEXT,',"
        " 'title TEXT CHECK (length(title) < 10),') WHERE name = 'items';"
    )
    _with_migration(monkeypatch, "9999_edit", edit)
    conn = connect(path)
    assert conn.execute("PRAGMA schema_version").fetchone()[0] == version + 1
    assert conn.execute("PRAGMA writable_schema").fetchone()[0] == 0
    with pytest.raises(sqlite3.IntegrityError):  # the edited schema is the one in use
        conn.execute(
            "INSERT INTO items (source, source_id, title, first_seen, harvested_at)"
            " VALUES ('ia', 'x', 'a long long title', 'n', 'n')"
        )


def test_a_schema_edit_the_rows_break_is_rolled_back(tmp_path, monkeypatch):
    path = tmp_path / "catalogue.sqlite"
    conn = connect(path)
    _insert(conn, "fma", "x")
    before = _items_sql(conn)
    conn.close()
    # A CHECK the existing row fails: integrity_check finds it and nothing is committed.
    edit = (
        f"{SCHEMA_EDIT}\nUPDATE sqlite_master SET sql = replace(sql, 'source TEXT NOT NULL',"
        " 'source TEXT NOT NULL CHECK (source = ''ia'')') WHERE name = 'items';"
    )
    _with_migration(monkeypatch, "9999_bad", edit)
    with pytest.raises(CCMirrorError, match="9999_bad left the catalogue inconsistent"):
        connect(path)
    monkeypatch.undo()
    conn = connect(path)
    assert _items_sql(conn) == before and "9999_bad" not in {
        r[0] for r in conn.execute("SELECT name FROM migrations")
    }
    assert conn.execute("PRAGMA writable_schema").fetchone()[0] == 0
