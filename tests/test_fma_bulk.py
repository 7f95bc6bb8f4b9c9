"""The FMA harvest's bulk path: the search index it writes per batch, a harvest that
dies mid-way, repeated ids across batches."""

from __future__ import annotations

import pytest

import ccmirror.catalogue.fma_load as fma_load
import ccmirror.sources.fma as fma
from ccmirror.harvest import harvest
from ccmirror.mirror import open_mirror
from ccmirror.search import search
from ccmirror.sources.fma import rows as fma_rows
from fmahelpers import CC0, FMA_LIMITED, track_row, write_metadata_zip

# The search row of an item as migration 0031 defined it (its file-insert trigger):
# the bulk path must give exactly this.
ITEM_ROW_0031 = """
SELECT i.id, coalesce(i.title, ''), coalesce(i.creator, ''), coalesce(i.album, ''),
       i.source || ':' || i.source_id || ' ' || i.source_id || ' ' ||
           coalesce((SELECT group_concat(coalesce(isrc, '') || ' ' || coalesce(mbid, ''), ' ')
                     FROM files WHERE item_id = i.id), ''),
       coalesce((SELECT group_concat(
               coalesce(artists, '') || ' ' || coalesce(genres, '') || ' ' ||
               coalesce(composer, '') || ' ' || coalesce(lyricist, '') || ' ' ||
               coalesce(producer, '') || ' ' || coalesce(engineer, '') || ' ' ||
               coalesce(publisher, ''), ' ')
             FROM files WHERE item_id = i.id), '')
FROM items AS i ORDER BY i.id
"""


def _manifest(write_manifest, meta) -> object:
    return write_manifest(
        f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\naudio_base_url = "http://127.0.0.1:9/"\n'
    )


def _rows() -> list:
    rows = [track_row(n, licence=CC0) for n in range(2, 12)]
    rows[3] = track_row(5, licence=CC0, track_composer="Ada &amp; Lovelace")
    rows[4] = track_row(6, licence=FMA_LIMITED)  # refused: still indexed
    rows[5] = track_row(
        7, licence=CC0, track_genres="[{'genre_id': '2', 'genre_title': 'Krautrock'}]"
    )
    return rows


def test_bulk_search_rows_equal_the_triggers(tmp_path, write_manifest, monkeypatch):
    monkeypatch.setattr(fma, "BATCH", 4)
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows())
    with open_mirror(_manifest(write_manifest, meta)) as m:
        before = [m.db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("cache_size", "temp_store")]
        assert harvest(m)["new"] == 10
        db = m.db
        # The harvest's page cache and in-memory staging end with it (sync sorts next).
        after = [db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("cache_size", "temp_store")]
        assert after == before
        got = db.execute(
            "SELECT rowid, title, creator, album, identifiers, recording FROM items_fts"
            " ORDER BY rowid"
        ).fetchall()
        assert [tuple(r) for r in got] == [tuple(r) for r in db.execute(ITEM_ROW_0031)]
        files = db.execute("SELECT rowid, name, title, item_id FROM files_fts ORDER BY rowid")
        want = db.execute("SELECT id, name, coalesce(title, ''), item_id FROM files ORDER BY id")
        assert [tuple(r) for r in files] == [tuple(r) for r in want]
        assert db.execute("SELECT count(*) FROM bulk_load").fetchone()[0] == 0
        # Found by a genre, a composer (unescaped), a file name, an id.
        assert [h["source_id"] for h in search(m, "Krautrock")["hits"]] == ["000007"]
        assert [h["source_id"] for h in search(m, "Lovelace")["hits"]] == ["000005"]
        assert [h["source_id"] for h in search(m, "000009.mp3")["hits"]] == ["000009"]
        assert [h["source_id"] for h in search(m, "fma:000006")["hits"]] == ["000006"]
        # Rows written outside the bulk path still index through the triggers.
        db.execute(
            "INSERT INTO items (source, source_id, title, first_seen, harvested_at)"
            " VALUES ('ia', 'x1', 'Zyzzyva', '2026', '2026')"
        )
        assert [h["source_id"] for h in search(m, "Zyzzyva")["hits"]] == ["x1"]


def test_a_harvest_that_dies_midway_resumes(tmp_path, write_manifest, monkeypatch):
    """A batch that fails rolls back whole (items, files, search rows, the bulk_load
    flag); committed batches stay; the next harvest adds only what is missing."""
    monkeypatch.setattr(fma, "BATCH", 3)
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", _rows())
    real = fma_load.insert_new
    calls = []

    def dies_on_the_third(db, rows, now):
        calls.append(len(rows))
        real(db, rows, now)
        if len(calls) == 3:
            raise KeyboardInterrupt  # after its writes, before its commit

    monkeypatch.setattr(fma_load, "insert_new", dies_on_the_third)
    with open_mirror(_manifest(write_manifest, meta)) as m:
        with pytest.raises(KeyboardInterrupt):
            harvest(m)
        db = m.db
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM items_fts").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM files_fts").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM bulk_load").fetchone()[0] == 0
        monkeypatch.setattr(fma_load, "insert_new", real)
        again = harvest(m)
        assert (again["new"], again["unchanged"], again["found"]) == (4, 6, 10)
        got = db.execute("SELECT rowid, recording FROM items_fts ORDER BY rowid").fetchall()
        assert [tuple(r) for r in got] == [(r[0], r[5]) for r in db.execute(ITEM_ROW_0031)]


def test_repeated_ids_across_batches_and_beyond_the_bitmap(tmp_path, write_manifest, monkeypatch):
    monkeypatch.setattr(fma, "BATCH", 2)
    big = fma_rows.BITMAP_IDS + 5
    rows = [track_row(n, licence=CC0) for n in (2, 3, 4, big, 5, 3, big, 2)]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows)
    with open_mirror(_manifest(write_manifest, meta)) as m:
        first = harvest(m)
        assert (first["rows"], first["duplicates"], first["new"]) == (8, 3, 5)
        ids = {r[0] for r in m.db.execute("SELECT source_id FROM items")}
        assert ids == {"000002", "000003", "000004", "000005", f"{big:06d}"}
