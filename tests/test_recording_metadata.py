"""Per-recording metadata (issue 18): from the sources to the catalogue and MANIFEST.csv."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ccmirror.catalogue.db import connect
from ccmirror.fetch import fetch
from ccmirror.harvest import harvest
from ccmirror.licence.check import check
from ccmirror.mirror import open_mirror
from ccmirror.packs import pack
from ccmirror.packs.payload import MANIFEST_COLUMNS, METADATA_COLUMNS, build_payload, pack_rows
from ccmirror.packs.rebuild import _inputs, rebuild_torrent
from ccmirror.packs.torrent import info_hashes, make_torrent
from ccmirror.publish.metadata import iter_lines
from ccmirror.publish.run import publish
from ccmirror.recording import as_list, parse_genres
from ccmirror.sample.audio import RATE
from ccmirror.search import search
from fmahelpers import track_row, write_audio_tree, write_metadata_zip
from iafake import IAServer
from iahelpers import audio_bytes, ia_manifest
from packhelpers import add_file, add_item, make_mirror

MIGRATIONS = Path(__file__).parents[1] / "src/ccmirror/catalogue/migrations"


def _manifest_rows(packs_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for path in sorted(packs_dir.glob("*/MANIFEST.csv")):
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        header = list(reader.fieldnames or [])
        rows += list(reader)
    return header, rows


def test_genre_lists_parse_or_are_kept_as_text():
    fma = "[{'genre_id': '21', 'genre_title': 'Hip-Hop'}, {'genre_id': '1', 'genre_title': 'Folk'}]"
    assert as_list(parse_genres(fma)) == ["Hip-Hop", "Folk"]
    assert as_list(parse_genres("Rock; Jazz")) == ["Rock", "Jazz"]
    assert as_list(parse_genres(["Ambient", "Drone;Noise"])) == ["Ambient", "Drone", "Noise"]
    broken = "[{'genre_id': '21', 'genre_title': 'Hip-"
    assert parse_genres(broken) == broken and as_list(broken) == [broken]
    assert parse_genres("") is None and parse_genres(None) is None


def test_ia_file_entries_and_item_metadata_reach_the_catalogue_and_manifest(write_manifest):
    tags = {"title": "Song A", "artist": "Tag Artist"}
    with IAServer() as ia:
        ia.add_item(
            "album-x",
            {
                "title": "Album X",
                "creator": "Item Artist",
                "date": "2011-03-04",
                "subject": ["Electronic", "Ambient"],
                "publisher": "Some Netlabel",
                "collection": "netlabels",
                "licenseurl": "https://creativecommons.org/licenses/by/4.0/",
            },
            {
                "01.flac": {
                    "data": audio_bytes("flac", 1, 0.5, tags),
                    "title": "Song A",
                    "creator": "Guest; Item Artist",
                    "track": "01",
                    "genre": "Techno",
                    "length": "0.50",
                    "composer": "Ann Composer",
                },
                "02.mp3": {"data": audio_bytes("mp3", 2, 0.5), "track": "2", "length": "0:01"},
            },
            downloads=50,
        )
        manifest = ia_manifest(write_manifest, ia)
        with open_mirror(manifest) as m:
            harvest(m)
            files = {
                r["name"]: dict(r)
                for r in m.db.execute("SELECT * FROM files ORDER BY name").fetchall()
            }
            one, two = files["01.flac"], files["02.mp3"]
            assert json.loads(one["artists"]) == ["Guest", "Item Artist"]
            assert one["track"] == "01" and json.loads(one["genres"]) == ["Techno"]
            assert one["composer"] == "Ann Composer" and one["publisher"] == "Some Netlabel"
            assert one["release_date"] == "2011-03-04" and one["duration"] == 0.5
            # Silent file entry: the item's creator and subject stand in.
            assert json.loads(two["artists"]) == ["Item Artist"]
            assert json.loads(two["genres"]) == ["Electronic", "Ambient"]
            assert two["track"] == "2" and two["duration"] == 1.0
            # search finds the item by genre, artist, composer and label words
            for words in ("techno", "ambient", "guest", "ann composer", "some netlabel"):
                assert [h["id"] for h in search(m, words)["hits"]] == ["ia:album-x"], words
            assert search(m, "polka")["total"] == 0
            # the dump carries the lists as JSON lists
            dumped = [json.loads(line) for line in iter_lines(m.db, m.name)]
            row = next(
                d["row"] for d in dumped if d["table"] == "files" and d["row"]["name"] == "01.flac"
            )
            assert row["genres"] == ["Techno"] and row["artists"] == ["Guest", "Item Artist"]
            assert row["composer"] == "Ann Composer" and row["release_date"] == "2011-03-04"
            assert fetch(m)["fetched"] == 2
            check(m)
            pack(m, seal_partial=True)
            header, rows = _manifest_rows(m.packs_dir)
    # Additive: the old columns first, in their order, then the new ones.
    assert header[: len(MANIFEST_COLUMNS)] == list(MANIFEST_COLUMNS)
    assert header[-len(METADATA_COLUMNS) :] == list(METADATA_COLUMNS)
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    a = by_name["01.flac"]
    assert a["genre"] == "Techno" and a["composer"] == "Ann Composer"
    assert a["publisher"] == "Some Netlabel" and a["release_date"] == "2011-03-04"
    assert a["track"] == "01" and a["duration_s"] == "0.5"
    assert a["artists"] == "Guest; Item Artist"
    assert by_name["02.mp3"]["genre"] == "Electronic; Ambient"


def test_fma_raw_tracks_and_raw_albums_in_the_real_zip_layout(tmp_path, write_manifest):
    genres = (
        "[{'genre_id': '21', 'genre_title': 'Hip-Hop'}, {'genre_id': '4', 'genre_title': 'Jazz'}]"
    )
    rows = [
        track_row(
            2,
            track_genres=genres,
            track_composer="C. Omposer",
            track_lyricist="L. Yricist",
            track_publisher="Label Records",
            track_number="7",
            track_duration="03:05",
        ),
        track_row(3, track_genres="[{'genre_id': '21', 'genre_title"),  # does not parse
    ]
    albums = [
        {
            "album_id": "1002",
            "album_date_released": "05/06/2009",
            "album_producer": "P. Roducer",
            "album_engineer": "E. Ngineer",
        }
    ]
    meta = write_metadata_zip(tmp_path / "fma_metadata.zip", rows, albums=albums)
    tree = tmp_path / "fma_full"
    write_audio_tree(tree, [2, 3])
    body = f'[[source]]\nkind = "fma"\nmetadata = "{meta}"\naudio_root = "{tree}"\n'
    with open_mirror(write_manifest(body)) as m:
        harvest(m)
        f = {
            r["source_id"]: dict(r)
            for r in m.db.execute(
                "SELECT i.source_id, f.* FROM files f JOIN items i ON i.id = f.item_id"
            )
        }
        two, three = f["000002"], f["000003"]
        assert json.loads(two["genres"]) == ["Hip-Hop", "Jazz"]
        assert two["composer"] == "C. Omposer" and two["lyricist"] == "L. Yricist"
        assert two["publisher"] == "Label Records" and two["track"] == "7"
        assert two["duration"] == 185.0 and json.loads(two["artists"]) == ["Artist 2"]
        assert two["release_date"] == "2009-05-06"
        assert two["producer"] == "P. Roducer" and two["engineer"] == "E. Ngineer"
        assert three["genres"] == "[{'genre_id': '21', 'genre_title"  # kept as text
        assert three["producer"] is None  # album 1003 is not in raw_albums.csv
        assert [h["id"] for h in search(m, "omposer")["hits"]] == ["fma:000002"]
        assert [h["id"] for h in search(m, "label records jazz")["hits"]] == ["fma:000002"]
        dumped = [json.loads(line) for line in iter_lines(m.db, m.name)]
        rows = {d["row"]["name"]: d["row"] for d in dumped if d["table"] == "files"}
        assert rows["000002.mp3"]["genres"] == ["Hip-Hop", "Jazz"]
        assert rows["000002.mp3"]["producer"] == "P. Roducer"
        assert rows["000003.mp3"]["genres"] == "[{'genre_id': '21', 'genre_title"
        assert fetch(m)["fetched"] == 2
        check(m)
        pack(m, seal_partial=True)
        header, packed = _manifest_rows(m.packs_dir)
        publish(m)
        pages = "".join(p.read_text("utf-8") for p in (m.public_dir / "packs").glob("*.html"))
    # The pack page shows each file's genre and playing time.
    assert "Hip-Hop; Jazz" in pages and ">3:05<" in pages
    assert header[-len(METADATA_COLUMNS) :] == list(METADATA_COLUMNS)
    row = next(r for r in packed if r["source_id"] == "000002")
    assert row["genre"] == "Hip-Hop; Jazz" and row["duration_s"] == "185"
    assert row["composer"] == "C. Omposer" and row["publisher"] == "Label Records"
    assert row["release_date"] == "2009-05-06" and row["track"] == "7"
    assert row["lyricist"] == "L. Yricist"
    assert row["producer"] == "P. Roducer" and row["engineer"] == "E. Ngineer"


def test_a_round_one_catalogue_upgrades_in_place_and_keeps_its_data(tmp_path):
    # A catalogue as round 1 left it: migrations up to 0007 applied, rows in it.
    path = tmp_path / "catalogue.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for sql in sorted(MIGRATIONS.glob("000*.sql")):
        old.executescript(sql.read_text(encoding="utf-8"))
        old.execute("INSERT INTO migrations VALUES (?, '2026-01-01T00:00:00Z')", (sql.stem,))
    old.execute(
        "INSERT INTO items (source, source_id, title, creator, album, date, first_seen,"
        " harvested_at) VALUES ('ia', 'x', 'T', 'C', 'A', '2001', 'now', 'now')"
    )
    old.execute(
        "INSERT INTO files (item_id, name, size, sha1, isrc, title) VALUES"
        " (1, 'a.flac', 10, 'ab', 'USXXX0100001', 'Song')"
    )
    old.commit()
    old.close()
    db = connect(path)
    try:
        applied = {r[0] for r in db.execute("SELECT name FROM migrations")}
        assert "0030_recording_metadata" in applied
        f = db.execute("SELECT * FROM files").fetchone()
        assert (f["name"], f["size"], f["sha1"], f["isrc"], f["title"]) == (
            "a.flac",
            10,
            "ab",
            "USXXX0100001",
            "Song",
        )
        assert f["genres"] is None and f["composer"] is None
        item = db.execute("SELECT title, creator, album, date FROM items").fetchone()
        assert tuple(item) == ("T", "C", "A", "2001")
        # The search index, made again with its new column, still finds the old rows.
        hits = db.execute("SELECT rowid FROM items_fts WHERE items_fts MATCH 'usxxx0100001'")
        assert [r[0] for r in hits] == [1]
    finally:
        db.close()


@pytest.mark.parametrize("recorded", [False, True])
def test_sealed_packs_rebuild_with_the_columns_they_were_sealed_with(tmp_path, recorded):
    m = make_mirror(tmp_path)
    item = add_item(m, "ia", "album-1", popularity=100)
    add_file(m, item, "01.flac", seed=1)
    pack(m, seal_partial=True)
    p = m.db.execute("SELECT * FROM packs WHERE is_metadata = 0").fetchone()
    if not recorded:
        # Sealed before 0030: no columns recorded, MANIFEST.csv without the new ones.
        with m.db:
            m.db.execute("UPDATE packs SET manifest_columns = NULL WHERE id = ?", (p["id"],))
        rows = [dict(r) for r in pack_rows(m.db, p["id"])]
        build_payload(m.data_dir, m.packs_dir, p["name"], m.name, rows)
        torrent = make_torrent(m.packs_dir, p["name"], **_inputs(m, p))
        v1, v2 = info_hashes(torrent)
        with m.db:
            m.db.execute(
                "UPDATE packs SET info_hash_v1 = ?, info_hash_v2 = ? WHERE id = ?",
                (v1, v2, p["id"]),
            )
        # What harvest now records arrives after sealing: the old pack must not show it.
        with m.db:
            m.db.execute("UPDATE files SET genres = '[\"Rock\"]', composer = 'Someone'")
    p = m.db.execute("SELECT * FROM packs WHERE id = ?", (p["id"],)).fetchone()
    manifest = m.packs_dir / p["name"] / "MANIFEST.csv"
    before = manifest.read_bytes()
    header = before.split(b"\n", 1)[0].decode().split(",")
    assert ("genre" in header) == recorded and header[: len(MANIFEST_COLUMNS)] == list(
        MANIFEST_COLUMNS
    )
    shutil.rmtree(m.packs_dir / p["name"])
    (m.data_dir / p["torrent_path"]).unlink()
    rebuild_torrent(m, p)  # raises if the info-hash differs
    assert manifest.read_bytes() == before
    m.close()


MBID = "b1a9c0e9-d987-4042-ae91-78d6a3267d69"


def _with_mbid(flac: bytes, tmp_path: Path) -> bytes:
    """The FLAC with a MusicBrainz recording id in its Vorbis comments."""
    from mutagen.flac import FLAC

    path = tmp_path / "mbid.flac"
    path.write_bytes(flac)
    f = FLAC(path)
    f["MUSICBRAINZ_TRACKID"] = MBID
    f.save()
    return path.read_bytes()


def test_check_fills_gaps_from_tags_and_stream_and_notes_disagreements(write_manifest, tmp_path):
    flac_tags = {
        "genre": "Tag Genre",
        "composer": "Tag Composer",
        "track": "3",
        "publisher": "Tag Label",
    }
    mp3_tags = {"genre": "Disco", "composer": "Tag Composer", "track": "4/9"}
    with IAServer() as ia:
        ia.add_item(
            "album-y",
            {
                "title": "Album Y",
                "creator": "Someone",
                "collection": "netlabels",
                "licenseurl": "https://creativecommons.org/licenses/by/4.0/",
            },
            {
                # The source says nothing of genre, composer, label: the tags fill them.
                "01.flac": {"data": _with_mbid(audio_bytes("flac", 3, 0.5, flac_tags), tmp_path)},
                # The source names a genre and a composer: kept; the tags' differing genre
                # is noted in the evidence, the agreeing composer not.
                "02.mp3": {
                    "data": audio_bytes("mp3", 4, 0.5, mp3_tags),
                    "genre": "Funk",
                    "composer": "tag composer",
                    "track": "04",
                },
            },
        )
        with open_mirror(ia_manifest(write_manifest, ia)) as m:
            harvest(m)
            fetch(m)
            check(m)
            files = {r["name"]: dict(r) for r in m.db.execute("SELECT * FROM files")}
            pack(m, seal_partial=True)
            _, packed = _manifest_rows(m.packs_dir)
    one, two = files["01.flac"], files["02.mp3"]
    # What the tags alone gave reaches MANIFEST.csv too.
    row = {r["path"].rsplit("/", 1)[-1]: r for r in packed}["01.flac"]
    assert row["mbid"] == MBID and row["genre"] == "Tag Genre" and row["codec"] == "flac"
    assert row["composer"] == "Tag Composer" and row["publisher"] == "Tag Label"
    assert json.loads(one["genres"]) == ["Tag Genre"] and one["composer"] == "Tag Composer"
    assert one["track"] == "3" and one["publisher"] == "Tag Label"
    assert one["codec"] == "flac" and one["sample_rate"] == RATE and one["channels"] == 2
    assert one["bit_rate"] > 0 and abs(one["duration"] - 0.5) < 0.05
    assert two["codec"] == "mp3" and two["bit_rate"] > 0 and two["sample_rate"] == RATE
    assert json.loads(two["genres"]) == ["Funk"] and two["composer"] == "tag composer"
    assert two["track"] == "04"
    notes = {e["tag"]: e["value"] for e in json.loads(two["evidence"])}
    assert notes.get("catalogue:tag_genres") == "Disco"
    assert "catalogue:tag_composer" not in notes and "catalogue:tag_track" not in notes


def test_licence_inspect_reports_embedded_pictures(tmp_path):
    from mutagen.flac import FLAC, Picture
    from mutagen.id3 import APIC, ID3

    from ccmirror.licence import inspect
    from ccmirror.sample.audio import write_audio

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    flac = write_audio(tmp_path / "a.flac", "flac", seconds=0.2)
    f = FLAC(flac)
    pic = Picture()
    pic.type, pic.mime, pic.data = 3, "image/png", png
    f.add_picture(pic)
    f.save()
    mp3 = write_audio(tmp_path / "b.mp3", "mp3", seconds=0.2, tags={"title": "B"})
    tags = ID3(mp3)
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=png))
    tags.add(APIC(encoding=3, mime="image/png", type=4, desc="back", data=png))
    tags.save(mp3)
    plain = write_audio(tmp_path / "c.flac", "flac", seconds=0.2)
    rows = {Path(r["path"]).name: r for r in inspect([flac, mp3, plain])["files"]}
    assert rows["a.flac"]["embedded_pictures"] == 1
    assert rows["b.mp3"]["embedded_pictures"] == 2
    assert rows["c.flac"]["embedded_pictures"] == 0
    # The picture stays inside the file: the bytes are unchanged by inspecting.
    assert FLAC(flac).pictures[0].data == png
