"""The FMA harvest's first load (the source empty: rows planned straight into the insert
tuples, no staging or compare) makes exactly the catalogue the staged path makes."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

import ccmirror.catalogue.fma_load as fma_load
import ccmirror.sources.fma as fma
from ccmirror.errors import UsageError
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from ccmirror.sources.fma import first
from fmahelpers import (
    BY_4,
    CC0,
    FMA_LIMITED,
    start_first_harvest,
    track_row,
    write_audio_tree,
    write_metadata_zip,
)

ALBUMS = [
    {
        "album_id": "1000",
        "album_date_released": "3/14/2009",
        "album_engineer": "Eng &amp; Co",
        "album_producer": "Pro",
        "album_title": "Album 0",
    },
    {"album_id": "1002", "album_date_released": "", "album_producer": "", "album_title": "X"},
]


def _rows() -> list:
    rows: list = [track_row(n, licence=CC0 if n % 3 else BY_4) for n in range(2, 14)]
    rows += [
        track_row(14, licence=FMA_LIMITED),  # refused, with audio in the tree
        track_row(15, track_title='Tab\there, "quoted" \u00e9\u4e2d \\ back', track_number="x1"),
        track_row(16, track_composer="Ada &amp; Lovelace", track_lyricist="  L &amp; ly  "),
        track_row(17, track_file="music/A B/caf\u00e9 #1?.mp3", track_duration="1:02:48"),
        track_row(18, track_file="../../etc/passwd", track_date_created="bogus"),
        track_row(19, track_file="http://elsewhere/x.mp3", track_genres="[not python"),
        track_row(20, track_file="", track_bit_rate="", track_duration="", album_id=""),
        track_row(21, track_listens="12.0", track_interest="-3", artist_id="0042"),
        track_row(22, track_genres="[{'genre_id': '2', 'genre_title': 'Krautrock'}, 'x']"),
        track_row(23, track_date_recorded="", track_date_created="", track_copyright_p="P"),
        track_row(24, track_file="music/x.FLAC", track_duration="00:00"),
        track_row(3, track_title="a repeated id: dropped"),
        "not,enough,fields",
        [str(v) for v in track_row(25).values()][:-1] + ["", "one too many"],
        track_row(26, track_listens="lots"),
        track_row(27, artist="", track_title=""),
    ]
    bad_id = track_row(28)
    bad_id["track_id"] = "x28"
    rows.append(bad_id)
    return rows


def _manifest(tmp: Path, name: str, meta: Path, audio: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[mirror]\nname = "{name}"\ndata_dir = "{tmp / name}"\n\n'
        f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\n{audio}\n',
        encoding="utf-8",
    )
    return path


def _dump(m) -> dict:
    db = m.db
    stamps = ("first_seen", "harvested_at")
    cols = [r[1] for r in db.execute("PRAGMA table_info(items)") if r[1] not in stamps]
    return {
        "items": [tuple(r) for r in db.execute(f"SELECT {', '.join(cols)} FROM items ORDER BY id")],
        "files": [tuple(r) for r in db.execute("SELECT * FROM files ORDER BY id")],
        "items_fts": [tuple(r) for r in db.execute("SELECT rowid, * FROM items_fts ORDER BY 1")],
        "files_fts": [tuple(r) for r in db.execute("SELECT rowid, * FROM files_fts ORDER BY 1")],
        "extra": [r[0] for r in db.execute("SELECT extra FROM items ORDER BY id")],
    }


@pytest.mark.parametrize(("audio", "child"), [("http", False), ("tree", False), ("tree", True)])
def test_first_load_equals_the_staged_path(tmp_path, monkeypatch, audio, child):
    """The first load, in this process or planned by a child process (first.py), makes
    the staged path's catalogue and counts."""
    monkeypatch.setattr(fma, "BATCH", 4)
    monkeypatch.setattr(first, "CHILD_BYTES", 0 if child else 1 << 60)
    children = []
    real_run_child = first.run_child
    monkeypatch.setattr(first, "run_child", lambda *a: children.append(1) or real_run_child(*a))
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows(), albums=ALBUMS)
    if audio == "tree":
        tree = tmp_path / "fma_full"
        write_audio_tree(tree, [2, 3, 5, 8, 13, 14, 15, 17, 22], seconds=0.05)
        where = f'audio_root = "{tree}"'
    else:
        where = 'audio_base_url = "http://127.0.0.1:9/"'
    got = {}
    for name in ("fresh", "staged"):
        if name == "staged":  # as if the source held items: every row staged and compared
            monkeypatch.setattr(fma_load, "source_is_empty", lambda db: False)
        with open_mirror(_manifest(tmp_path, name, meta, where)) as m:
            result = harvest(m)
            got[name] = (result, _dump(m))
    fresh, staged = got["fresh"], got["staged"]
    assert children == ([1] if child else [])
    assert fresh[0]["new"] == 24 and fresh[0]["malformed"] == 4 and fresh[0]["duplicates"] == 1
    assert fresh[0] == staged[0]
    assert fresh[1] == staged[1]
    # extra is json.dumps(..., sort_keys=True, ensure_ascii=False) of its non-None values
    extras = [json.loads(text) for text in fresh[1]["extra"]]
    for text, extra in zip(fresh[1]["extra"], extras, strict=True):
        assert text == json.dumps(extra, sort_keys=True, ensure_ascii=False)
        assert None not in extra.values()
    by_id = {e["track_id"]: e for e in extras}
    assert by_id[5]["release_date"] == "2009-03-14" and by_id[5]["producer"] == "Pro"
    assert "producer" not in by_id[2] and "release_date" not in by_id[2]
    assert by_id[16]["composer"] == "Ada & Lovelace" and by_id[16]["lyricist"] == "L &amp; ly"
    assert by_id[21]["artist_id"] == 42 and "album_id" not in by_id[20]


def test_a_source_holding_items_takes_the_staged_path(tmp_path, monkeypatch):
    """One withdrawn track in the catalogue: the harvest compares every row (and the
    takedown outlives it), never the first-load path."""
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", [track_row(2), track_row(3)])
    path = _manifest(tmp_path, "m", meta, 'audio_base_url = "http://127.0.0.1:9/"')
    with open_mirror(path) as m:
        harvest(m)
        m.db.execute("DELETE FROM items WHERE source_id = '000003'")
        m.db.execute("UPDATE items SET status = 'withdrawn', reason = 'takedown'")
        inserted = []
        real = fma._Run._insert
        monkeypatch.setattr(fma._Run, "_insert", lambda *a: inserted.append(a) or real(*a))
        again = harvest(m)
        assert not inserted and (again["new"], again["found"]) == (1, 2)
        status = dict(m.db.execute("SELECT source_id, status FROM items").fetchall())
        assert status == {"000002": "withdrawn", "000003": "ok"}


def test_the_childs_errors_are_raised_here(tmp_path, monkeypatch):
    monkeypatch.setattr(first, "CHILD_BYTES", 0)
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", [], text="a,b\n1,2\n")
    path = _manifest(tmp_path, "m", meta, 'audio_base_url = "http://127.0.0.1:9/"')
    with open_mirror(path) as m, pytest.raises(UsageError) as e:
        harvest(m)
    assert "not raw_tracks.csv" in str(e.value) and e.value.exit_code == 2


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_killed_first_harvest_takes_its_child_and_the_next_one_completes(tmp_path):
    """SIGKILL to a first harvest mid-way: its planning child dies with it (no orphan),
    the batches it committed stay, and the next harvest adds exactly the rest."""
    rows = [track_row(n, licence=CC0 if n % 4 else FMA_LIMITED) for n in range(2, 40_002)]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    path = _manifest(tmp_path, "m", meta, 'audio_base_url = "http://127.0.0.1:9/"')
    db_path = tmp_path / "m" / "catalogue.sqlite"
    proc = start_first_harvest(path)
    deadline = time.monotonic() + 120
    committed = 0
    while not committed and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        if db_path.exists():
            with contextlib.suppress(sqlite3.Error):
                ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1)
                with contextlib.closing(ro):
                    committed = ro.execute("SELECT count(*) FROM items").fetchone()[0]
    children = _children(proc.pid)
    assert proc.poll() is None and committed and children  # mid-way, its child planning
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while not all(_gone(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(c) for c in children)
    with open_mirror(path) as m:
        done = m.db.execute("SELECT count(*) FROM items").fetchone()[0]
        assert 0 < done < 40_000
        again = harvest(m)
        assert (again["new"], again["unchanged"], again["found"]) == (40_000 - done, done, 40_000)
        db = m.db
        assert db.execute("SELECT count(*) FROM items_fts").fetchone()[0] == 40_000
        assert db.execute("SELECT count(*) FROM files_fts").fetchone()[0] == 40_000
        assert db.execute("SELECT count(*) FROM bulk_load").fetchone()[0] == 0
        refused = db.execute("SELECT count(*) FROM items WHERE status = 'refused'").fetchone()[0]
        assert refused == 10_000
