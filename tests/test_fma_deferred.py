"""A first load builds the secondary indexes of items and files once at its end
(catalogue/deferred.py): the same schema afterwards, a killed load's indexes built by the
next open, and no open reads a catalogue while a load has them dropped."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from ccmirror.catalogue import connect, deferred
from ccmirror.errors import LockHeld
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from ccmirror.search import search
from ccmirror.sources.fma import first
from fmahelpers import CC0, FMA_LIMITED, start_first_harvest, track_row, write_metadata_zip

INDEXES = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('items', 'files')"
    " ORDER BY name"
)


def _manifest(tmp: Path, meta: Path) -> Path:
    path = tmp / "m.toml"
    path.write_text(
        f'[mirror]\nname = "m"\ndata_dir = "{tmp / "m"}"\n\n[[source]]\nkind = "fma"\n'
        f'metadata = "{meta}"\naudio_base_url = "http://127.0.0.1:9/"\n',
        encoding="utf-8",
    )
    return path


def _fresh_indexes(tmp: Path) -> list[tuple]:
    with contextlib.closing(connect(tmp / "fresh" / "catalogue.sqlite")) as db:
        return [tuple(r) for r in db.execute(INDEXES)]


def _indexes(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(INDEXES)]


def test_a_first_load_through_the_child_ends_with_every_index(tmp_path, monkeypatch):
    monkeypatch.setattr(first, "CHILD_BYTES", 0)
    dropped = []
    real = deferred.defer
    monkeypatch.setattr(deferred, "defer", lambda db: dropped.append(real(db)) or dropped[-1])
    rows = [track_row(n, licence=CC0 if n % 4 else FMA_LIMITED) for n in range(2, 30)]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    with open_mirror(_manifest(tmp_path, meta)) as m:
        assert harvest(m)["new"] == 28
        assert dropped and dropped[0] >= 9  # the load did run without them
        assert _indexes(m.db) == _fresh_indexes(tmp_path)
        assert deferred.pending(m.db) == 0
        assert m.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert [h["source_id"] for h in search(m, "fma:000007")["hits"]] == ["000007"]


def test_an_open_during_a_load_is_refused_and_a_killed_loads_indexes_are_built(tmp_path):
    db_path = tmp_path / "m" / "catalogue.sqlite"
    db = connect(db_path)
    lock = deferred.take_lock(deferred.lock_path(db))
    assert lock is not None
    assert deferred.defer(db) >= 9
    assert [name for name, sql in _indexes(db) if sql] == []  # the UNIQUE ones' alone
    db.close()
    for readonly in (True, False):
        with pytest.raises(LockHeld):
            connect(db_path, readonly=readonly)
    deferred.release(lock)  # the loader died
    with contextlib.closing(connect(db_path, readonly=True)) as ro:
        assert _indexes(ro) == _fresh_indexes(tmp_path)
        assert deferred.pending(ro) == 0


def test_a_sigkilled_first_load_is_repaired_by_the_next_open(tmp_path):
    """SIGKILL to a real harvest process while its indexes are dropped: the next open
    builds them (a read-only one too), search finds the loaded rows, and the next harvest
    completes the load with the indexes of a fresh catalogue."""
    rows = [track_row(n, licence=CC0 if n % 4 else FMA_LIMITED) for n in range(2, 40_002)]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    path = _manifest(tmp_path, meta)
    db_path = tmp_path / "m" / "catalogue.sqlite"
    proc = start_first_harvest(path)
    deadline = time.monotonic() + 120
    seen = (0, 0)
    while not all(seen) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        if db_path.exists():
            with contextlib.suppress(sqlite3.Error):
                ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1)
                with contextlib.closing(ro):
                    seen = (
                        ro.execute("SELECT count(*) FROM items").fetchone()[0],
                        ro.execute("SELECT count(*) FROM deferred_indexes").fetchone()[0],
                    )
    assert proc.poll() is None and all(seen)  # mid-way, rows committed, indexes dropped
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with contextlib.closing(sqlite3.connect(db_path)) as raw:
        assert raw.execute("SELECT count(*) FROM deferred_indexes").fetchone()[0] > 0
        gone = "SELECT 1 FROM sqlite_master WHERE name = 'items_rank_ok'"
        assert raw.execute(gone).fetchone() is None
    fresh = _fresh_indexes(tmp_path)
    with open_mirror(path, readonly=True) as m:
        assert _indexes(m.db) == fresh
        done = m.db.execute("SELECT count(*) FROM items").fetchone()[0]
        assert 0 < done < 40_000
        hits = search(m, "fma:000002")["hits"]
        assert [h["source_id"] for h in hits] == ["000002"]
    with open_mirror(path) as m:
        again = harvest(m)
        assert (again["new"], again["unchanged"], again["found"]) == (40_000 - done, done, 40_000)
        assert _indexes(m.db) == fresh and deferred.pending(m.db) == 0
        assert m.db.execute("SELECT count(*) FROM items_fts").fetchone()[0] == 40_000
        assert [h["source_id"] for h in search(m, "fma:040001")["hits"]] == ["040001"]
        assert m.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
