from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from ccmirror import catalogue
from ccmirror.catalogue.db import migrate
from ccmirror.errors import LockHeld, UnsafeName
from ccmirror.fsutil import atomic_write_bytes, hash_file, safe_join, safe_relpath
from ccmirror.lock import DataLock


def test_catalogue_wal_migrations_recorded_and_idempotent(tmp_path):
    path = tmp_path / "catalogue.sqlite"
    conn = catalogue.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names[0] == "0001_initial"
    assert migrate(conn) == []  # nothing applied twice
    conn.close()
    again = catalogue.connect(path)
    assert [r[0] for r in again.execute("SELECT name FROM migrations ORDER BY name")] == names


def test_transaction_rolls_back_on_error(tmp_path):
    conn = catalogue.connect(tmp_path / "c.sqlite")
    now = catalogue.utcnow()
    with pytest.raises(RuntimeError), catalogue.transaction(conn):
        conn.execute(
            "INSERT INTO items(source, source_id, first_seen, harvested_at) VALUES ('ia','x',?,?)",
            (now, now),
        )
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO items(source, source_id, first_seen, harvested_at) VALUES ('s3','x',?,?)",
            (now, now),
        )


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../b", "/etc/passwd", "a\x00b", "a\nb", "a\x7fb", "", "a//b", "./a", "a\\b"],
)
def test_unsafe_names_refused(name, tmp_path):
    with pytest.raises(UnsafeName):
        safe_relpath(name)
    with pytest.raises(UnsafeName):
        safe_join(tmp_path, name)


def test_safe_names_allowed(tmp_path):
    assert str(safe_relpath("disc 1/01 - Intro (live).flac")) == "disc 1/01 - Intro (live).flac"
    assert safe_join(tmp_path, "ä/ü.mp3") == tmp_path / "ä" / "ü.mp3"


def test_safe_join_refuses_symlink_escape(tmp_path):
    (tmp_path / "base").mkdir()
    os.symlink("/", tmp_path / "base" / "link")
    with pytest.raises(UnsafeName):
        safe_join(tmp_path / "base", "link/etc/passwd")


def test_atomic_write_and_hash(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(p, b"hello")
    assert p.read_bytes() == b"hello"
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    assert hash_file(p) == {
        "md5": "5d41402abc4b2a76b9719d911017c592",
        "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
    }


def test_lock_excludes_other_processes(tmp_path):
    code = (
        "import sys,time; from ccmirror.lock import DataLock\n"
        "with DataLock(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as e:
            DataLock(tmp_path).acquire()
        assert e.value.exit_code == 3
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with DataLock(tmp_path):  # released when the holder exits
        pass


def test_cli_version_help_and_unknown_command(cli):
    r = cli("--version")
    assert r.returncode == 0 and "ccmirror" in r.stdout
    r = cli("--help")
    assert r.returncode == 0 and "Usage" in r.stdout
    r = cli("no-such-command")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_readonly_catalogue_in_a_path_with_uri_characters(tmp_path):
    d = tmp_path / "mirror ?#%20 one"
    d.mkdir()
    catalogue.connect(d / "catalogue.sqlite").close()
    ro = catalogue.connect(d / "catalogue.sqlite", readonly=True)
    assert ro.execute("SELECT count(*) FROM migrations").fetchone()[0] >= 1
    ro.close()
    assert sorted(p.name for p in d.iterdir())[0] == "catalogue.sqlite"
    assert not any(p.name.startswith("mirror ") for p in tmp_path.iterdir() if p != d)


@pytest.mark.parametrize(
    "args,words",
    [
        (("sync", "m.toml", "--max-bytes", "huge"), "--max-bytes"),
        (("plan", "m.toml", "--budget", "lots"), "--budget"),
        (("seed-plan", "m.toml", "--space", "lots"), "--space"),
        (("no-such-command",), "no-such-command"),
    ],
)
def test_usage_errors_are_one_line_exit_2(cli, args, words):
    r = cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ccmirror: ") and words in lines[0]
    assert "--help" in lines[0] and r.stdout == ""


def test_data_dir_accepted_before_and_after_the_command(cli, write_manifest, tmp_path):
    path = write_manifest('[[source]]\nkind = "ia"\nquery = "collection:x"\n')
    for where in ("before", "after"):
        catalogue.connect(tmp_path / where / "catalogue.sqlite").close()
    for args in (
        ("--data-dir", str(tmp_path / "before"), "status", str(path)),
        ("status", str(path), "--data-dir", str(tmp_path / "after")),
    ):
        r = cli(*args, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["items"] == {}
    # A data dir without a catalogue (a wrong --data-dir): one line, exit 2, nothing created.
    r = cli("status", str(path), "--data-dir", str(tmp_path / "wrong"))
    assert r.returncode == 2 and "no catalogue in" in r.stderr
    assert not (tmp_path / "wrong").exists()


def test_read_only_commands_upgrade_an_older_catalogue(tmp_path, monkeypatch):
    """After an upgrade that adds a migration, status/search must not fail on 'no such
    column': the read-only open applies what is missing first."""
    import ccmirror.catalogue.db as db

    path = tmp_path / "catalogue.sqlite"
    real = db._migrations
    monkeypatch.setattr(db, "_migrations", lambda: real()[:2])  # an older release
    catalogue.connect(path).close()
    monkeypatch.setattr(db, "_migrations", real)
    ro = catalogue.connect(path, readonly=True)
    names = [r[0] for r in ro.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in real()]
    ro.execute("SELECT tier FROM items").fetchall()  # a column from a later migration
    ro.close()


def test_a_migration_applied_meanwhile_by_another_process_is_skipped(tmp_path, monkeypatch):
    import ccmirror.catalogue.db as db

    path = tmp_path / "catalogue.sqlite"
    first = catalogue.connect(path)
    other = sqlite3.connect(path, isolation_level=None)
    last = first.execute("SELECT name FROM migrations ORDER BY name DESC LIMIT 1").fetchone()[0]
    other.execute("DELETE FROM migrations WHERE name = ?", (last,))  # looks pending again
    real = db.pending_migrations
    calls = []

    def pending(conn):
        # The second look happens after applying failed (its schema is in place): by then
        # the other process has recorded it, as a concurrent upgrader would.
        calls.append(1)
        if len(calls) == 2:
            other.execute("INSERT INTO migrations(name, applied_at) VALUES (?, 'x')", (last,))
        return real(conn)

    monkeypatch.setattr(db, "pending_migrations", pending)
    assert migrate(first) == [] and len(calls) == 2
